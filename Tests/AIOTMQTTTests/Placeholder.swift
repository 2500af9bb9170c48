import XCTest
@testable import AIOTMQTT
