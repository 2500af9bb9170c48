// Where encoded messages go. The MQTT client implements it; tests use a fake that records.
import AIOTMQTT

public protocol Publisher: AnyObject, Sendable {
    func publish(_ topic: MQTTTopic, payload: [UInt8], qos: MQTTQoS, retain: Bool) throws(MQTTError)
}

/// The publishing connection as the shutdown sequence needs it: wait for the broker's
/// acknowledgements, then disconnect.
public protocol PublishingConnection: Publisher {
    var inflightCount: Int { get }
    func waitForPublishes(timeout: Duration) async -> Bool
    func stop()
}

extension MQTTClient: PublishingConnection {}
