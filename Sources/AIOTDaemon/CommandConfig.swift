// The `[commands]` table of the configuration (CommandPolicy.swift says what each key does).
import TOMLKit

extension Reader {
    func commands(_ root: TOMLTable) throws(ConfigError) -> CommandSettings {
        var s = CommandSettings()
        guard let t = try table(root, "commands") else { return s }
        try checkKeys(t, "commands", ["allow", "hmac_key_file", "max_skew_s", "rate_per_minute", "burst"])
        if let v = t["allow"] {
            guard let a = v.array else { throw err("commands.allow", "expected an array of command names, e.g. [\"status\", \"reload\"]") }
            var allow = Set<String>()
            for (i, x) in a.enumerated() {
                guard let n = x.string, CommandSettings.known.contains(n) else {
                    throw err("commands.allow[\(i)]", "expected one of \(CommandSettings.known.joined(separator: ", "))")
                }
                allow.insert(n)
            }
            s.allow = allow
        }
        if let path = try optString(t, "hmac_key_file", "commands.hmac_key_file") {
            do { s.key = try CommandKey.load(path) } catch { throw ConfigError("\(source): \(error.message)") }
        }
        s.maxSkewSeconds = try double(t, "max_skew_s", "commands.max_skew_s", default: 30, min: 1, max: 3600)!
        s.ratePerMinute = try double(t, "rate_per_minute", "commands.rate_per_minute", default: 60, min: 0.01, max: 1e6)!
        s.burst = try int(t, "burst", "commands.burst", default: 10, range: 1...10_000)
        return s
    }
}
