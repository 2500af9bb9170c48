// The `[rollback]` table: how a stream's new model is judged against its previous one
// (docs/rollback.md). Every number bounded, every message naming the key.
import TOMLKit

public struct RollbackConfig: Sendable, Equatable {
    /// Resolved target steps (per sensor, summed over the stream's sensors) before the verdict;
    /// 0 turns the comparison off (a switch is then rolled back only when the new model fails).
    public var steps = 48
    /// The new model is kept when its online MAE is at most (1 + worse_by/100) x the previous one's.
    public var worseByPercent = 20.0
    public init() {}
}

extension Reader {
    func readRollback(_ root: TOMLTable) throws(ConfigError) -> RollbackConfig {
        var c = RollbackConfig()
        guard let t = try table(root, "rollback") else { return c }
        try checkKeys(t, "rollback", ["steps", "worse_by"])
        c.steps = try int(t, "steps", "rollback.steps", default: 48, range: 0...1_000_000)
        c.worseByPercent = try double(t, "worse_by", "rollback.worse_by", default: 20, min: 0, max: 10_000)!
        return c
    }
}
