import AIOTModel
import CMallocCounter
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

final class AllocationTests: XCTestCase {
    /// The host side of one inference (build the buffer in place, execute, check the RESULT block,
    /// decode outputs) allocates nothing in steady state.
    func testFPGAInferenceAllocatesNothingInSteadyState() throws {
        let (_, m, v) = try XCTUnwrap(committedModels().first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let device = CountingAccelerator(inputCount: v.inputCount, identity: identityBytes(m.identity)!)
        let counted = try FPGAEngine(link: BoardLink(transport: device), parameters: ParameterSet(model: m),
                                     identity: identityBytes(m.identity)!, fallback: SoftwareEngine(model: m),
                                     startWithoutBoard: true)
        XCTAssertEqual(counted.health, .fallenBack, "the double has no registers, so the engine starts fallen back")
        counted.forceHealthyForMeasurement()
        let input = Array(v.inputs[0..<v.inputCount])
        var out = [Int32](repeating: 0, count: v.outputCount)
        try input.withUnsafeBufferPointer { i in try out.withUnsafeMutableBufferPointer { try counted.infer(i, into: $0) } }
        XCTAssertEqual(counted.lastEngine, .fpga)
        let trips = device.roundTrips
        let before = aiot_malloc_count()
        for _ in 0..<1000 {
            try input.withUnsafeBufferPointer { i in try out.withUnsafeMutableBufferPointer { try counted.infer(i, into: $0) } }
        }
        let allocations = aiot_malloc_count() - before
        XCTAssertEqual(counted.stats.fpgaInferences, 1001)
        XCTAssertEqual(device.roundTrips - trips, 1000, "one round trip each")
        XCTAssertEqual(allocations, 0, "allocations in 1000 inferences")
    }
}
