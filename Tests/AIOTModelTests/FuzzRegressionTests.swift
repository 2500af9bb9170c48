// Inputs found by review or by the fuzzers (Fuzz/) that once crashed the model module's readers.
// Each must now be a typed error.
import Testing
@testable import AIOTModel

@Suite struct VectorFileRegressions {
    /// A 30-byte header asking for 2^24 vectors of 2^24 + 2^24 integers made `reserveCapacity` ask
    /// for about 1 PiB and trap before reading a single integer.
    @Test func hugeHeaderOnShortFileIsAnError() {
        let text = "aiotvec1 16777216 16777216 16777216\n"
        #expect(throws: VectorFileError.self) { try TestVectors(text: text) }
        do { _ = try TestVectors(text: text) } catch {
            #expect(error.message.contains("truncated or the header is wrong"), "\(error)")
        }
    }

    @Test func zeroWidthVectorsAreAnError() {
        #expect(throws: VectorFileError.self) { try TestVectors(text: "aiotvec1 16777216 0 0\n") }
        #expect(throws: VectorFileError.self) { try TestVectors(text: "aiotvec1 1 0 1\n5\n") }
    }

    @Test func aWellFormedFileStillReads() throws {
        let v = try TestVectors(text: "aiotvec1 2 2 1\n1 2 3\n-4 5 -6\n")
        #expect(v.count == 2 && v.inputs == [1, 2, -4, 5] && v.outputs == [3, -6])
    }
}
