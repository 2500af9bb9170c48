// Text from the network (command names, sensor names from topic levels, errors naming a topic)
// goes into log lines only through `printable`: a newline in a name would otherwise forge a
// journal entry.

/// `s` with every byte outside printable ASCII replaced by "?", cut to `limit` characters.
func printable(_ s: String, limit: Int = 64) -> String {
    String(s.unicodeScalars.prefix(limit).map { $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" })
}
