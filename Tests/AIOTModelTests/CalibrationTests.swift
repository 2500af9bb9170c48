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
        // The demo's model (configs/demo.toml).
        let m = try QuantizedModel(contentsOf: repoRoot.appendingPathComponent("models/elecdemand/W8A8S.safetensors").path)
        let c = try #require(m.calibration)
        #expect(c.split == "val" && c.windows == 1728)
        #expect(c.mae.count == 1 && c.rmse.count == 1 && c.levels == [0.5, 0.9, 0.95, 0.99, 0.999])
        // Recomputed apart from calibrate.py (numpy reference, np.quantile): the Swift engine's forecasts
        // on the 1,728 validation windows through `aiotctl infer`, with math.fsum and the linear
        // quantile written out (`python -m tools.train.swift_check --calibration --aiotctl
        // .build/debug/aiotctl models/elecdemand/W8A8S.safetensors`, 2026-12-07, the second-round
        // model): MAE 0.0468662, q0.99 0.1841989 GW, the same as the metadata to 1e-12.
        #expect(abs(c.mae[0] - 0.0468662) < 5e-7)
        #expect(abs((c.threshold(level: 0.99)?[0] ?? 0) - 0.1841989) < 5e-7)
        // What holds for any calibration: MAE <= RMSE, and the quantiles rise with the level.
        #expect(c.mae[0] <= c.rmse[0])
        let qs = c.levels.compactMap { c.threshold(level: $0)?[0] }
        #expect(qs.count == c.levels.count && zip(qs, qs.dropFirst()).allSatisfy { $0 <= $1 }, "\(qs)")
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
