// A lexical pass over a configuration before TOMLKit sees it. toml++ (inside TOMLKit 0.6.0) is built
// with its assertions on, and a few invalid documents reach an assertion instead of a parse error:
// a table header that does not start with a key (`[[[`, `[!a]`) and a non-ASCII bare key
// (`[ästream]`). An assertion aborts aiotd, at start (a crash loop) or on SIGHUP (the running daemon
// dies), so such documents are refused here with their line and column. Everything this pass lets
// through is still parsed and checked by TOMLKit; the pass only refuses what TOML forbids anyway.

/// Refuses the documents that would abort the TOML parser; nil when the text may be parsed.
func tomlPrecheck(_ text: String) -> (line: Int, column: Int, message: String)? {
    let b = Array(text.utf8)
    var i = 0, line = 1, lineStart = 0
    var openers: [UInt8] = []  // the [ and { open inside the current value
    var depth: Int { openers.count }
    var inValue = false        // after '=' until the value ends
    var atStatementStart = true

    func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }
    func fail(_ at: Int, _ m: String) -> (Int, Int, String) { (line, at - lineStart + 1, m) }
    /// Skips a string starting at b[i] (a quote); returns the index after it, or nil if unterminated.
    func skipString(_ i: Int) -> (end: Int, newlines: Int, lastNewline: Int)? {
        let q = b[i]
        let triple = i + 2 < b.count && b[i + 1] == q && b[i + 2] == q
        var j = triple ? i + 3 : i + 1
        var nl = 0, lastNL = -1
        while j < b.count {
            let c = b[j]
            if c == 0x5C && q == 0x22 { j += 2; continue }       // escape in a basic string
            if c == 0x0A {
                if !triple { return nil }
                nl += 1; lastNL = j
            }
            if c == q {
                if !triple { return (j + 1, nl, lastNL) }
                if j + 2 < b.count && b[j + 1] == q && b[j + 2] == q {
                    var e = j + 3
                    while e < b.count && b[e] == q && e < j + 5 { e += 1 }   // up to two quotes may close it
                    return (e, nl, lastNL)
                }
            }
            j += 1
        }
        return nil
    }

    while i < b.count {
        let c = b[i]
        switch c {
        case 0x0A:
            line += 1; lineStart = i + 1; i += 1
            if depth == 0 { inValue = false; atStatementStart = true }
            continue
        case 0x20, 0x09, 0x0D:
            i += 1; continue
        case 0x23:                                            // comment to the end of the line
            while i < b.count && b[i] != 0x0A { i += 1 }
            continue
        case 0x22, 0x27:
            // Strings are left to TOMLKit; an unterminated one is its syntax error too.
            guard let s = skipString(i) else { return nil }
            if s.newlines > 0 { line += s.newlines; lineStart = s.lastNewline + 1 }
            i = s.end; atStatementStart = false
            continue
        default:
            break
        }
        if c >= 0x80 {
            return fail(i, "a character outside ASCII outside a quoted string (keys and table names must be ASCII or quoted)")
        }
        if atStatementStart && !inValue && depth == 0 && c == 0x5B {
            // A table header: '[' or '[[', blanks, then a key (bare or quoted).
            var j = i + 1
            if j < b.count && b[j] == 0x5B { j += 1 }
            while j < b.count && (b[j] == 0x20 || b[j] == 0x09) { j += 1 }
            guard j < b.count, isBareKey(b[j]) || b[j] == 0x22 || b[j] == 0x27 else {
                return fail(j, "a table header must start with a name: [name] or [[name]]")
            }
            i = j; atStatementStart = false
            continue
        }
        atStatementStart = false
        if c == 0x3D && depth == 0 { inValue = true }
        else if inValue && (c == 0x5B || c == 0x7B) { openers.append(c) }
        else if inValue && (c == 0x5D || c == 0x7D) {
            // A closer that does not match its opener (`x = [}]`) is another input that reached an
            // assertion in toml++ rather than an error.
            guard let open = openers.popLast(), (open == 0x5B && c == 0x5D) || (open == 0x7B && c == 0x7D) else {
                return fail(i, "'\(Character(Unicode.Scalar(c)))' does not close an open '[' or '{'")
            }
        }
        i += 1
    }
    return nil
}
