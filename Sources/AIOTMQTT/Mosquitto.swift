// Layer 2 of the wrapper (layer 1 is the CMosquitto module, layer 3 the public MQTTClient): one
// internal function per libmosquitto call the client makes, in C's argument order. Each turns its
// return code into an MQTTError in one line through `check`, so every failure carries the
// function's name and rc. Nothing here is public and no C type leaves this file and MQTT.swift's
// callbacks.
#if canImport(Glibc)
import Glibc
#endif
import CMosquitto

/// The one place a libmosquitto return code becomes an error.
@inline(__always)
func check(_ rc: Int32, _ function: StaticString, _ message: @autoclosure () -> String) throws(MQTTError) {
    guard rc != MOSQ_ERR_SUCCESS.rawValue else { return }
    throw MQTTError(function: function, returnCode: rc, message: message())
}

enum Mosquitto {
    /// `mosquitto_lib_init` once per process (it is not thread-safe; a lazy global is).
    static let libraryReady: Void = { _ = mosquitto_lib_init() }()

    static func new(_ id: String, _ cleanSession: Bool, _ userdata: UnsafeMutableRawPointer) throws(MQTTError) -> OpaquePointer {
        guard let h = mosquitto_new(id, cleanSession, userdata) else {
            throw MQTTError(function: "mosquitto_new", returnCode: MOSQ_ERR_ERRNO.rawValue,
                            message: "cannot create an MQTT client with client id \"\(id)\" (it must be non-empty when clean_session is off)")
        }
        return h
    }

    static func destroy(_ h: OpaquePointer) { mosquitto_destroy(h) }

    static func intOption(_ h: OpaquePointer, _ option: mosq_opt_t, _ value: Int32) throws(MQTTError) {
        try check(mosquitto_int_option(h, option, value), "mosquitto_int_option", "mqtt option \(option.rawValue) = \(value) rejected")
    }

    static func maxInflightMessages(_ h: OpaquePointer, _ n: UInt32) throws(MQTTError) {
        try check(mosquitto_max_inflight_messages_set(h, n), "mosquitto_max_inflight_messages_set", "mqtt.max_inflight \(n) rejected")
    }

    static func reconnectDelay(_ h: OpaquePointer, _ min: UInt32, _ max: UInt32, _ exponential: Bool) throws(MQTTError) {
        try check(mosquitto_reconnect_delay_set(h, min, max, exponential), "mosquitto_reconnect_delay_set", "mqtt reconnect delays \(min)...\(max) s rejected")
    }

    static func usernamePassword(_ h: OpaquePointer, _ user: String, _ password: String?) throws(MQTTError) {
        try check(mosquitto_username_pw_set(h, user, password), "mosquitto_username_pw_set", "mqtt username/password rejected")
    }

    static func tls(_ h: OpaquePointer, _ ca: String, _ cert: String?, _ key: String?) throws(MQTTError) {
        try check(mosquitto_tls_set(h, ca, nil, cert, key, nil), "mosquitto_tls_set",
                  "mqtt TLS setup failed (ca \(ca), cert \(cert ?? "none")); check the files exist and are readable")
    }

    static func will(_ h: OpaquePointer, _ topic: String, _ payload: [UInt8], _ qos: Int32, _ retain: Bool) throws(MQTTError) {
        let rc = payload.withUnsafeBytes { mosquitto_will_set(h, topic, Int32($0.count), $0.baseAddress, qos, retain) }
        try check(rc, "mosquitto_will_set", "mqtt last will on \(topic) rejected")
    }

    static func subTopicCheck(_ filter: String) throws(MQTTError) {
        try check(mosquitto_sub_topic_check(filter), "mosquitto_sub_topic_check",
                  "invalid subscription filter \"\(filter)\": '+' and '#' must fill a whole level, '#' only last")
    }

    /// CONNECT with MQTT v5 properties; libmosquitto keeps them for its own reconnects. Port 0
    /// makes `host` a Unix socket path (libmosquitto's convention). Blocks for
    /// the TCP connect (the client calls it from its connect thread, never from a task).
    static func connectV5(_ h: OpaquePointer, _ host: String, _ port: Int32, _ keepalive: Int32,
                          maximumPacketSize: UInt32?, sessionExpiry: UInt32?) throws(MQTTError) {
        var props: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&props) }
        if let m = maximumPacketSize {
            try check(mosquitto_property_add_int32(&props, Int32(MQTT_PROP_MAXIMUM_PACKET_SIZE.rawValue), m),
                      "mosquitto_property_add_int32", "maximum packet size \(m) rejected")
        }
        if let s = sessionExpiry {
            try check(mosquitto_property_add_int32(&props, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), s),
                      "mosquitto_property_add_int32", "session expiry \(s) rejected")
        }
        try check(mosquitto_connect_bind_v5(h, host, port, keepalive, nil, props), "mosquitto_connect_bind_v5", "connect to \(port == 0 ? "unix:" + host : "\(host):\(port)")")
    }

    static func connect(_ h: OpaquePointer, _ host: String, _ port: Int32, _ keepalive: Int32) throws(MQTTError) {
        try check(mosquitto_connect(h, host, port, keepalive), "mosquitto_connect", "connect to \(port == 0 ? "unix:" + host : "\(host):\(port)")")
    }

    /// The connection the last connect set up, again (blocking, like the first): the network loop
    /// calls it after a lost connection.
    static func reconnect(_ h: OpaquePointer) throws(MQTTError) {
        try check(mosquitto_reconnect(h), "mosquitto_reconnect", "reconnect")
    }

    /// The network loop's steps (NetworkLoop.swift); each returns libmosquitto's rc, non-zero when the
    /// connection is gone (libmosquitto has then closed the socket and called the disconnect callback).
    static func loopRead(_ h: OpaquePointer) -> Int32 { mosquitto_loop_read(h, 1) }
    static func loopWrite(_ h: OpaquePointer) -> Int32 { mosquitto_loop_write(h, 1) }
    static func loopMisc(_ h: OpaquePointer) -> Int32 { mosquitto_loop_misc(h) }
    /// The connection's socket, or -1 when there is none.
    static func socket(_ h: OpaquePointer) -> Int32 { mosquitto_socket(h) }
    /// True while libmosquitto has bytes waiting to be written (poll for POLLOUT).
    static func wantWrite(_ h: OpaquePointer) -> Bool { mosquitto_want_write(h) }

    static func disconnect(_ h: OpaquePointer) { _ = mosquitto_disconnect(h) }

    /// The message id of the SUBSCRIBE.
    static func subscribe(_ h: OpaquePointer, _ filter: String, _ qos: Int32) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        try check(mosquitto_subscribe(h, &mid, filter, qos), "mosquitto_subscribe", "subscribe to \(filter)")
        return mid
    }

    /// The raw return code and message id: publish decides itself which codes are failures.
    static func publish(_ h: OpaquePointer, _ topic: UnsafePointer<CChar>, _ payload: UnsafeRawBufferPointer,
                        _ qos: Int32, _ retain: Bool) -> (rc: Int32, mid: Int32) {
        var mid: Int32 = 0
        let rc = mosquitto_publish(h, &mid, topic, Int32(payload.count), payload.baseAddress, qos, retain)
        return (rc, mid)
    }
}
