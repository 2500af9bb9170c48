import Testing
import Foundation
@testable import AIOTDaemon

@Test func jsonSerializationOfStatusShapes() throws {
    let obj: [String: Any] = ["online": true, "n": 3, "d": 1.5, "models": [["a": 1, "p": 60.0] as [String: Any]], "c": ["x": ["r": 1] as [String: Int]] as [String: Any]]
    print(JSONSerialization.isValidJSONObject(obj))
    let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
    print(String(decoding: d, as: UTF8.self))
    let body = (try? JSONSerialization.jsonObject(with: Data("{\"id\":\"r1\"}".utf8))) as? [String: Any] ?? [:]
    print(body, body["id"] as? String as Any)
}
