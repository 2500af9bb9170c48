import XCTest
@testable import AIOTModel
