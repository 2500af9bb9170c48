#include <mosquitto.h>
// MQTT v5 property identifiers and reason codes (MQTT_PROP_MAXIMUM_PACKET_SIZE, ...).
#include <mqtt_protocol.h>
