import XCTest
@testable import AIOTTelemetry
