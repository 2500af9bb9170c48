// Where encoded messages go. The MQTT client implements it; tests use a fake that records.
import AIOTMQTT

public protocol Publisher: AnyObject, Sendable {
    func publish(_ topic: MQTTTopic, payload: [UInt8], qos: MQTTQoS, retain: Bool) throws(MQTTError)
}

extension MQTTClient: Publisher {}
