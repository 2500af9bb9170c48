// The software engine's plan for contract v2's linear skip path (docs/arithmetic.md §5).

/// Contract v2's skip path (§5 steps 15-17): `skip = Linear(input [1, W*F])` and
/// `output = Add(head, skip)`, with its own scratch so it allocates nothing per inference.
struct SkipPlan {
    let linear: LinearPlan
    let add: AddStep
    let centered: UnsafeMutablePointer<Int32>  // [W*F]: the window minus z_input
    let narrow: UnsafeMutablePointer<Int16>    // [pad8(W*F)]
    let skipOut: UnsafeMutablePointer<Int32>   // [P], centered on z_skip
    let count: Int, horizon: Int

    init(_ s: SkipPath, input: QuantParams, output: QuantParams, inputCount: Int, narrow useNarrow: Bool, arena: Arena) {
        linear = LinearPlan(s.linear, input: input, req: RequantStep(s.skipReq, s.skipAct), narrow: useNarrow, arena: arena)
        add = AddStep(s.outputReq, output)
        count = inputCount
        horizon = s.linear.outputs
        centered = arena.allocate(Int32.self, inputCount)
        narrow = arena.allocate(Int16.self, pad8(inputCount))
        skipOut = arena.allocate(Int32.self, horizon)
    }

    /// `head` holds the head's outputs centered on z_head; writes the quantized forecast.
    @inline(__always)
    func run(_ input: UnsafePointer<Int32>, inputZero: Int32, head: UnsafePointer<Int32>, outputZero: Int32,
             into output: UnsafeMutablePointer<Int32>) {
        for i in 0..<count { centered[i] = input[i] &- inputZero }
        linear.prepare(centered, rows: 1, narrow: narrow)
        linear.apply(centered, rows: 1, narrow: narrow, relu: false, into: skipOut)
        for p in 0..<horizon {
            output[p] = add.centered(Int64(head[p]) &* add.m1 &+ Int64(skipOut[p]) &* add.m2) &+ outputZero
        }
    }
}
