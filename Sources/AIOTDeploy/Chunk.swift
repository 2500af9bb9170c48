// One piece of an artifact on the wire, and the running SHA-256 that lets the gateway check every
// piece as it arrives (docs/deploy.md, "Chunks").
import Crypto

/// `AIOTCHK1` | offset (u64 BE) | length (u32 BE) | SHA-256 of bytes [0, offset+length) | data.
public struct Chunk: Sendable, Equatable {
    public static let magic = Array("AIOTCHK1".utf8)
    public static let headerSize = 52
    public var offset: UInt64
    public var running: [UInt8]
    public var data: ArraySlice<UInt8>

    public init(offset: UInt64, running: [UInt8], data: ArraySlice<UInt8>) {
        self.offset = offset
        self.running = running
        self.data = data
    }

    public var end: UInt64 { offset + UInt64(data.count) }

    public func encoded() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(Self.headerSize + data.count)
        for i in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: offset >> (8 * UInt64(i)))) }
        let n = UInt32(data.count)
        for i in (0..<4).reversed() { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt32(i)))) }
        out += running
        out += data
        return out
    }

    public static func parse(_ bytes: [UInt8]) throws(DeployError) -> Chunk {
        guard bytes.count > headerSize, bytes.starts(with: magic) else {
            throw DeployError(.malformed, "a chunk starts with AIOTCHK1 and a \(headerSize)-byte header, then at least one byte of data")
        }
        var offset: UInt64 = 0
        for i in 8..<16 { offset = offset << 8 | UInt64(bytes[i]) }
        var n: UInt32 = 0
        for i in 16..<20 { n = n << 8 | UInt32(bytes[i]) }
        guard Int(n) == bytes.count - headerSize else {
            throw DeployError(.malformed, "chunk at offset \(offset) says \(n) bytes but carries \(bytes.count - headerSize) (truncated?)")
        }
        guard offset <= UInt64(Int64.max) - UInt64(n) else { throw DeployError(.chunkOutOfRange, "chunk offset \(offset) is out of range") }
        return Chunk(offset: offset, running: Array(bytes[20..<52]), data: bytes[headerSize...])
    }

    /// Splits `artifact` into chunks of at most `size` bytes with their running hashes.
    public static func split(_ artifact: [UInt8], size: Int) -> [Chunk] {
        var h = Crypto.SHA256()
        var out: [Chunk] = []
        var at = 0
        while at < artifact.count {
            let end = min(artifact.count, at + size)
            h.update(data: artifact[at..<end])
            out.append(Chunk(offset: UInt64(at), running: Array(h.finalize()), data: artifact[at..<end]))
            at = end
        }
        return out
    }
}

/// What a chunk did to the staging file.
public enum ChunkOutcome: Sendable, Equatable {
    /// Written; the next byte needed.
    case appended(next: UInt64)
    /// Already have it (QoS 1 redelivery); the next byte needed.
    case duplicate(next: UInt64)
    /// Ahead of what we have (an earlier chunk is missing); resend from `next`.
    case gap(next: UInt64)
    /// The last byte arrived and the whole artifact matches the manifest's size and SHA-256.
    case complete
}
