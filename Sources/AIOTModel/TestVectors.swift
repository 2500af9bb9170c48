// The shared test-vector format (docs/arithmetic.md §11) and the check every engine runs against it.

/// A parsed `NAME.vectors.txt`: `count` input windows and the reference outputs for them.
public struct TestVectors: Sendable, Equatable {
    public var inputCount: Int
    public var outputCount: Int
    /// `[count, inputCount]`, row-major.
    public var inputs: [Int32]
    /// `[count, outputCount]`, row-major.
    public var outputs: [Int32]
    public var count: Int { inputCount == 0 ? 0 : inputs.count / inputCount }

    public init(inputCount: Int, outputCount: Int, inputs: [Int32], outputs: [Int32]) {
        self.inputCount = inputCount
        self.outputCount = outputCount
        self.inputs = inputs
        self.outputs = outputs
    }

    /// Parses the text form: `aiotvec1 <count> <n_in> <n_out>` then `count` lines of integers.
    public init(text: String) throws(VectorFileError) {
        var tokens = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).makeIterator()
        guard let magic = tokens.next(), magic == "aiotvec1" else {
            throw VectorFileError(message: "vector file does not start with 'aiotvec1'; regenerate it with tools/gen_vectors.py")
        }
        var header: [Int] = []
        for name in ["count", "n_in", "n_out"] {
            guard let t = tokens.next(), let v = Int(t), v >= 0, v <= 1 << 24 else {
                throw VectorFileError(message: "vector file header: '\(name)' is missing or not a non-negative integer")
            }
            header.append(v)
        }
        let (count, nIn, nOut) = (header[0], header[1], header[2])
        guard nIn > 0, nOut > 0 else {
            throw VectorFileError(message: "vector file header: n_in and n_out must be positive (got \(nIn) and \(nOut)); regenerate it with tools/gen_vectors.py")
        }
        // Every integer takes at least two bytes (a digit and a separator), so the text bounds how
        // many it can hold: a 30-byte header cannot make us reserve what it merely promises.
        let promised = count * (nIn + nOut)
        guard promised <= text.utf8.count / 2 + 1 else {
            throw VectorFileError(message: "vector file header promises \(count) vectors of \(nIn + nOut) integers but the file has only \(text.utf8.count) bytes; it is truncated or the header is wrong")
        }
        inputCount = nIn
        outputCount = nOut
        inputs = []
        outputs = []
        inputs.reserveCapacity(count * nIn)
        outputs.reserveCapacity(count * nOut)
        for vector in 0..<count {
            for i in 0..<(nIn + nOut) {
                guard let t = tokens.next() else {
                    throw VectorFileError(message: "vector file ends inside vector \(vector) (the header promises \(count)); it is truncated")
                }
                guard let v = Int32(t) else {
                    throw VectorFileError(message: "vector \(vector), integer \(i): '\(t)' is not a 32-bit integer")
                }
                if i < nIn { inputs.append(v) } else { outputs.append(v) }
            }
        }
        if tokens.next() != nil {
            throw VectorFileError(message: "vector file has integers after the \(count) vectors its header promises")
        }
    }
}

public struct VectorFileError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The outcome of running an engine over a vector file.
public struct VectorCheckResult: Sendable {
    public struct Mismatch: Sendable, Equatable {
        public var index: Int
        public var expected: [Int32]
        public var actual: [Int32]
    }
    public var total: Int
    public var identical: Int
    /// The first mismatches, in vector order (at most the limit passed to `check`).
    public var mismatches: [Mismatch]
    public var passed: Bool { identical == total }
}

extension TestVectors {
    /// Runs `engine` on every vector and compares outputs bit for bit.
    public func check(with engine: some InferenceEngine, keepMismatches limit: Int = 10) throws(InferenceError) -> VectorCheckResult {
        let shape = engine.model.shape
        guard inputCount == shape.window * shape.features, outputCount == shape.horizon else {
            throw InferenceError(.shape, "vectors have \(inputCount) inputs and \(outputCount) outputs but the model takes \(shape.window * shape.features) and forecasts \(shape.horizon); check that the vector file belongs to this model")
        }
        var identical = 0
        var mismatches: [VectorCheckResult.Mismatch] = []
        var actual = [Int32](repeating: 0, count: outputCount)
        for i in 0..<count {
            try inputs.withUnsafeBufferPointer { (all) throws(InferenceError) in
                try actual.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in
                    try engine.infer(UnsafeBufferPointer(rebasing: all[(i * inputCount)..<((i + 1) * inputCount)]), into: out)
                }
            }
            let expected = Array(outputs[(i * outputCount)..<((i + 1) * outputCount)])
            if expected == actual {
                identical += 1
            } else if mismatches.count < limit {
                mismatches.append(.init(index: i, expected: expected, actual: actual))
            }
        }
        return VectorCheckResult(total: count, identical: identical, mismatches: mismatches)
    }
}
