// The optional `calibration` metadata (docs/arithmetic.md §10): read from the bundled models, absent
// in older files (which still load), and a broken one refused with the key named.
import Foundation
import Testing
@testable import AIOTModel

/// A copy of `bytes` with `member` (JSON text) added to the `aiot` metadata document.
func withMetadataMember(_ bytes: [UInt8], _ member: String) -> [UInt8] {
    let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
    var header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self).trimmingCharacters(in: .whitespaces)
    let escaped = member.replacingOccurrences(of: "\"", with: "\\\"")
    header = header.replacingOccurrences(of: "\"aiot\":\"{", with: "\"aiot\":\"{\(escaped),")
    var h = Array(header.utf8)
    h += Array(repeating: UInt8(ascii: " "), count: (8 - h.count % 8) % 8)
    var out: [UInt8] = (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xff) }
    out += h
    out += bytes[(8 + n)...]
    return out
}

@Suite struct ModelCalibrationMetadata {
    @Test func bundledModelsCarryTheirValidationStatistics() throws {
        let m = try QuantizedModel(contentsOf: repoRoot.appendingPathComponent("models/elecdemand/W8A8.safetensors").path)
        let c = try #require(m.calibration)
        #expect(c.split == "val" && c.windows == 1728)
        #expect(c.mae.count == 1 && c.rmse.count == 1 && c.levels == [0.5, 0.9, 0.95, 0.99, 0.999])
        // tools/train/calibrate.py printed: validation MAE 0.06031, q99 0.27524 GW.
        #expect(abs(c.mae[0] - 0.06031) < 5e-6)
        #expect(abs((c.threshold(level: 0.99)?[0] ?? 0) - 0.27524) < 5e-6)
        let p48 = try QuantizedModel(contentsOf: repoRoot.appendingPathComponent("models/elecdemand-p48/W8A8.safetensors").path)
        #expect(p48.calibration?.mae.count == 48)
    }

    @Test func olderFilesWithoutItStillLoad() throws {
        let m = try QuantizedModel(contentsOf: defaultModelURL.path)
        #expect(m.calibration == nil)
    }

    @Test func aBrokenCalibrationIsRefusedWithItsKey() throws {
        let bytes = try [UInt8](Data(contentsOf: defaultModelURL))
        let good = withMetadataMember(bytes, #""calibration":{"split":"val","windows":3,"mae":[0.5],"rmse":[0.6],"abs_residual_quantiles":{"0.99":[1.5]}}"#)
        #expect(try QuantizedModel(bytes: good).calibration?.threshold(level: 0.99) == [1.5])
        for (member, key) in [
            (#""calibration":{"split":"val","windows":3,"mae":[0.5,1],"rmse":[0.6]}"#, "calibration.mae"),
            (#""calibration":{"split":"val","windows":3,"mae":[0.5],"rmse":[-1]}"#, "calibration.rmse[0]"),
            (#""calibration":{"split":"val","windows":3,"mae":[0.5],"rmse":[0.6],"abs_residual_quantiles":{"1.5":[1]}}"#, "calibration.abs_residual_quantiles.1.5"),
            (#""calibration":[]"#, "calibration"),
        ] {
            do {
                _ = try QuantizedModel(bytes: withMetadataMember(bytes, member))
                Issue.record("accepted \(member)")
            } catch {
                #expect(error.field == key, "\(member): \(error)")
            }
        }
    }
}
