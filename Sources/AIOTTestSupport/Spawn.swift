#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a spawned child's standard output and error go.
public enum ChildOutput: Sendable {
    /// The test runner's own.
    case inherit
    /// /dev/null.
    case discard
    /// Both appended to the file at this path (created if missing).
    case appendTo(String)
}

/// Why a child could not be started.
public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
}

/// `argv` (argv[0] an absolute path) as a child with an empty signal mask and every signal at its
/// default disposition: Swift's threads block signals and children inherit masks, so without this
/// a broker or daemon would never see the SIGTERM or SIGHUP a test sends. Standard input is
/// /dev/null; `environment` replaces the runner's when given. Not Foundation's Process: that one
/// learns of the exit from a dispatch source on the test tasks' worker threads, which a 2-core
/// machine can leave all blocked (a child unreaped, the run waiting for ever); the caller reaps
/// the returned pid itself with waitpid.
public func spawnChild(_ argv: [String], output: ChildOutput = .inherit, environment: [String: String]? = nil) throws(SpawnError) -> pid_t {
    precondition(!argv.isEmpty, "spawnChild needs a program")
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    switch output {
    case .inherit:
        break
    case .discard:
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    case .appendTo(let path):
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    let args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let env: [UnsafeMutablePointer<CChar>?]? = environment.map { e in e.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer {
        args.forEach { free($0) }
        env?.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = env.map { e in posix_spawn(&pid, argv[0], &actions, &attr, args, e) } ?? posix_spawn(&pid, argv[0], &actions, &attr, args, environ)
    guard rc == 0 else { throw SpawnError(description: "cannot start \(argv[0]): posix_spawn returned \(rc) (\(String(cString: strerror(rc))))") }
    return pid
}
