#include <mosquitto.h>
// MQTT v5 property identifiers and reason codes (MQTT_PROP_MAXIMUM_PACKET_SIZE, ...).
#include <mqtt_protocol.h>
// The network loop's own OS calls (NetworkLoop.swift): poll(2) on the client's socket and an
// eventfd that wakes the loop when another thread hands it a publish.
#include <poll.h>
#include <sys/eventfd.h>
