#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file with POSIX calls (the module stays free of Foundation).
func readFileBytes(_ path: String, limit: Int = 1 << 30) throws(ModelFileError) -> [UInt8] {
    func failure(_ what: String) -> ModelFileError {
        let reason = String(cString: strerror(errno))
        return ModelFileError(.unreadable, field: "", "model file \(path): \(what): \(reason); check the path and its permissions")
    }
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw failure("cannot open") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw failure("cannot stat") }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
        throw ModelFileError(.unreadable, field: "", "model file \(path): not a regular file; pass the path of a .safetensors model")
    }
    let size = Int(st.st_size)
    guard size <= limit else {
        throw ModelFileError(.unreadable, field: "", "model file \(path): \(size) bytes is larger than the \(limit)-byte limit for a model file; this is not an aiot model")
    }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { buf in read(fd, buf.baseAddress! + done, size - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw failure("cannot read")
        }
        if n == 0 { break }  // the file shrank while we read it: parse what we have, the layout check refuses it
        done += n
    }
    if done < size { bytes.removeSubrange(done...) }
    return bytes
}
