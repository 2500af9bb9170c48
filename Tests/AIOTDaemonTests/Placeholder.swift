import XCTest
@testable import AIOTDaemon
