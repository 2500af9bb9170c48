// The one error type of the MQTT wrapper: what went wrong (an opaque code a caller may match), the
// libmosquitto function and its return code when the library said so, and what to do next.
#if canImport(Glibc)
import Glibc
#endif
import CMosquitto

public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure; match on it (`catch let e as MQTTError where e.code == .refused`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: Int
        /// A setting or argument we reject before calling the library (port, topic, filter...).
        public static let invalidArgument = Code(raw: 1)
        /// libmosquitto returned an error code (see `function` and `returnCode`).
        public static let library = Code(raw: 2)
        /// The broker refused a subscription in its SUBACK.
        public static let subscriptionRefused = Code(raw: 3)
        /// A wait for the broker ran out of time.
        public static let timeout = Code(raw: 4)
        public var description: String {
            switch self {
            case .invalidArgument: return "invalid argument"
            case .library: return "libmosquitto error"
            case .subscriptionRefused: return "subscription refused"
            case .timeout: return "timeout"
            default: return "code \(raw)"
            }
        }
    }

    public var code: Code
    /// The libmosquitto function that failed, e.g. `mosquitto_publish`.
    public var function: String?
    /// Its return code (a `MOSQ_ERR_*` value), or the SUBACK reason code for `.subscriptionRefused`.
    public var returnCode: Int32?
    /// What failed and what to do about it, without the library's words (those are in `description`).
    public var message: String
    /// The library's explanation of `returnCode` (strerror for MOSQ_ERR_ERRNO), captured when it happened.
    public var libraryReason: String?

    /// An error we raise ourselves (not from a libmosquitto return code).
    public init(_ message: String, code: Code = .invalidArgument) {
        self.code = code
        self.message = message
    }

    init(function: StaticString, returnCode rc: Int32, message: String) {
        code = .library
        self.function = "\(function)"
        returnCode = rc
        self.message = message
        // errno is only meaningful right after the call: read it here, the one place rc becomes an error.
        libraryReason = rc == MOSQ_ERR_ERRNO.rawValue ? String(cString: strerror(errno)) : String(cString: mosquitto_strerror(rc))
    }

    public var description: String {
        guard let function, let returnCode else { return message }
        return "\(message): \(libraryReason ?? "error") (\(function) returned \(returnCode))"
    }
}
