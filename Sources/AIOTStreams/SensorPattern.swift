// Which sensors a `[[stream]]` template serves: exact names, globs (`*`, `?`), or `+` (any one
// topic level). Byte-level matching on the topic's sensor level: no String is built per reading.

/// A sensor pattern from the configuration: one or more items; a name matches if any item does.
public struct SensorPattern: Sendable, Equatable, CustomStringConvertible {
    public enum Item: Sendable, Equatable {
        case exact([UInt8])
        case glob([UInt8])
        case any
    }
    public let items: [Item]
    /// What the configuration said, for status and messages.
    public let source: [String]

    /// Refuses empty names and characters that cannot appear in one topic level.
    public init(_ patterns: [String]) throws(PatternError) {
        guard !patterns.isEmpty else { throw PatternError("give at least one sensor name, glob or \"+\"") }
        var items: [Item] = []
        for p in patterns {
            if p == "+" || p == "*" { items.append(.any); continue }
            guard !p.isEmpty, !p.contains("/"), !p.contains("#"), !p.contains("{"), !p.contains("+") else {
                throw PatternError("\"\(p)\" must be non-empty and contain none of / + # { (use \"+\" alone for every sensor)")
            }
            items.append(p.contains("*") || p.contains("?") ? .glob(Array(p.utf8)) : .exact(Array(p.utf8)))
        }
        self.items = items
        source = patterns
    }

    public var description: String { source.count == 1 ? source[0] : "[" + source.joined(separator: ", ") + "]" }

    /// The single exact name when this pattern is one sensor (old-style `sensor = "x"`).
    public var singleName: String? {
        if items.count == 1, case .exact = items[0] { return source[0] }
        return nil
    }

    /// How specific the best matching item is: 2 exact, 1 glob, 0 any; nil when nothing matches.
    /// The most specific template wins, so a stanza naming one sensor overrides a fleet template.
    public func match(_ name: UnsafeBufferPointer<UInt8>) -> Int? {
        var best: Int? = nil
        for item in items {
            switch item {
            case .exact(let n):
                if n.count == name.count && n.elementsEqual(name) { return 2 }
            case .glob(let g):
                if (best ?? -1) < 1 && g.withUnsafeBufferPointer({ Self.glob($0, name) }) { best = 1 }
            case .any:
                if best == nil { best = 0 }
            }
        }
        return best
    }

    public func matches(_ name: String) -> Bool {
        var n = name
        return n.withUTF8 { match($0) } != nil
    }

    /// `*` any run of bytes, `?` one byte; iterative with one backtrack point (linear-ish, no recursion).
    static func glob(_ p: UnsafeBufferPointer<UInt8>, _ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var pi = 0, si = 0
        var starP = -1, starS = 0
        while si < s.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == s[si]) {
                pi += 1; si += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                starP = pi; starS = si; pi += 1
            } else if starP >= 0 {
                pi = starP + 1; starS += 1; si = starS
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

public struct PatternError: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A topic template with one placeholder that is a whole topic level (`a/{sensor}/b`), matched
/// against incoming topics by prefix and suffix.
public struct TopicPattern: Sendable, Equatable {
    public let prefix: [UInt8]
    public let suffix: [UInt8]

    /// `template` has `{gateway}` already expanded; `placeholder` is e.g. "{sensor}". Refuses a
    /// placeholder that is not a whole level: `a/x{sensor}` would subscribe to `a/+` and match nothing.
    public init(_ template: String, placeholder: String) throws(PatternError) {
        let t = Array(template.utf8), k = Array(placeholder.utf8)
        var at: Int? = nil
        if t.count >= k.count {
            for i in 0...(t.count - k.count) where Array(t[i..<(i + k.count)]) == k {
                guard at == nil else { throw PatternError("\"\(template)\" contains \(placeholder) twice") }
                at = i
            }
        }
        guard let at else { throw PatternError("\"\(template)\" must contain \(placeholder)") }
        let before = at == 0 || t[at - 1] == UInt8(ascii: "/")
        let after = at + k.count == t.count || t[at + k.count] == UInt8(ascii: "/")
        guard before, after else {
            throw PatternError("\"\(template)\": \(placeholder) must be a whole topic level (between slashes), as in \"aiot/gw/readings/\(placeholder)\"")
        }
        prefix = Array(t[..<at])
        suffix = Array(t[(at + k.count)...])
    }

    /// The subscription filter: the placeholder replaced by `+`.
    public var filter: String { String(decoding: prefix + [UInt8(ascii: "+")] + suffix, as: UTF8.self) }

    /// The topic for one value of the placeholder.
    public func topic(_ value: String) -> String { String(decoding: prefix, as: UTF8.self) + value + String(decoding: suffix, as: UTF8.self) }

    /// The placeholder's level in `topic`, or nil when the topic is not this template's.
    @inline(__always)
    public func match(_ topic: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        let n = topic.count
        guard n > prefix.count + suffix.count else { return nil }
        for i in 0..<prefix.count where topic[i] != prefix[i] { return nil }
        for i in 0..<suffix.count where topic[n - suffix.count + i] != suffix[i] { return nil }
        let mid = UnsafeBufferPointer(rebasing: topic[prefix.count..<(n - suffix.count)])
        if mid.contains(UInt8(ascii: "/")) { return nil }
        return mid
    }
}
