import XCTest
@testable import AIOTStreams
