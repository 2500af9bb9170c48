import Foundation
import XCTest
@testable import AIOTModel

/// The §9 helpers against figures printed by the numpy helpers (tools/aiot/io.py) for the same
/// model with mean 20.5, std 3.25 on the input and mean -4.125, std 0.7 on the target. Readings
/// sit near rounding ties (`mean + std * s * (k + 0.5)`), so any change in evaluation order shows.
final class InputOutputTests: XCTestCase {
    private func model(_ name: String) throws -> QuantizedModel {
        var f = try EditableModelFile(bytes(of: repoRoot.appendingPathComponent("models/random/\(name).safetensors")))
        f.editMeta(["features"], .array([.object([("name", .string("x0")), ("unit", .string("degC")), ("mean", .double(20.5)), ("std", .double(3.25))])]))
        f.editMeta(["target", "mean"], .double(-4.125))
        f.editMeta(["target", "std"], .double(0.7))
        return try QuantizedModel(bytes: f.bytes())
    }

    func testQuantizeAndDequantizeMatchNumpy8Bit() throws {
        let m = try model("w24f1d16h1n1p1-w8a8")
        let x: [Double] = [1e+300, -1e+300, 20.5, 20.500000001, 19.98794453128696, 20.056218593782035, 20.124492656277106,
                           20.192766718772177, 20.261040781267248, 20.32931484376232, 20.397588906257393, 20.465862968752464,
                           20.534137031247536, 20.602411093742607, 20.67068515623768, 20.738959218732752, 20.807233281227823,
                           20.875507343722894, 20.943781406217965, 21.01205546871304, 21.08032953120811, 21.148603593703182,
                           21.216877656198253, 21.285151718693328]
        XCTAssertEqual(try m.quantizeInput(x), [127, -128, 7, 7, -1, 1, 2, 2, 3, 4, 6, 7, 7, 8, 10, 11, 12, 12, 13, 15, 16, 16, 17, 19])
        XCTAssertEqual(try m.dequantizeOutput([-128]), [-4.287006394786721])
        let q: [Int32] = [-128, -49, 127, 3, -5]
        let expected = [-4.287006394786721, -4.125, -3.764074360981481, -4.018362879380892, -4.0347685902453705]
        for (qi, yi) in zip(q, expected) { XCTAssertEqual(try m.dequantizeOutput([qi]), [yi]) }
    }

    func testQuantizeAndDequantizeMatchNumpy16Bit() throws {
        let m = try model("w12f1d32h1n2p3-w6a8i16o16")
        let x: [Double] = [1e+300, -1e+300, 20.5, 20.500000001, 20.499615401724842, 20.499871800574947, 20.500128199425053,
                           20.500384598275158, 20.50064099712526, 20.500897395975365, 20.50115379482547, 20.501410193675575]
        XCTAssertEqual(try m.quantizeInput(x), [32767, -32768, -1393, -1393, -1395, -1394, -1392, -1391, -1391, -1390, -1388, -1387])
        XCTAssertEqual(try m.dequantizeOutput([-32768, -4028, 32767]), [-5.271220330099127, -4.125, -2.657526894711295])
        XCTAssertEqual(try m.dequantizeOutput([3, -5, 0]).prefix(2), [-3.9642340239864446, -3.9645530832293394])
    }

    func testNonFiniteReadingsAreRejectedWithTheirIndex() throws {
        let m = try model("w24f1d16h1n1p1-w8a8")
        for bad in [Double.nan, .infinity, -.infinity] {
            var x = [Double](repeating: 20, count: 24)
            x[17] = bad
            XCTAssertThrowsError(try m.quantizeInput(x)) { error in
                let e = error as? QuantizationError
                XCTAssertEqual(e?.code, .nonFinite)
                XCTAssertEqual(e?.index, 17)
                XCTAssertTrue(e?.message.contains("x0") ?? false)
            }
        }
        XCTAssertThrowsError(try m.quantizeInput([1, 2, 3])) { error in
            XCTAssertEqual((error as? QuantizationError)?.code, .shape)
        }
    }

    func testEndToEndForecastIsInTargetUnits() throws {
        let m = try model("w24f1d16h1n1p1-w8a8")
        let engine = SoftwareEngine(model: m)
        let x = (0..<24).map { 20.5 + 3.0 * sin(Double($0) / 4) }
        let y = try m.dequantizeOutput(try engine.infer(m.quantizeInput(x)))
        XCTAssertEqual(y.count, 1)
        // The forecast lies on the output grid mapped into the target's units.
        let lowest = try m.dequantizeOutput([m.outputAct.lo])[0], highest = try m.dequantizeOutput([m.outputAct.hi])[0]
        XCTAssertTrue(y[0] >= lowest && y[0] <= highest)
    }
}
