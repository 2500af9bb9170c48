import XCTest
@testable import AIOTBoard
