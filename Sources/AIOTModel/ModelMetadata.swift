// Typed access to the `aiot` metadata document (docs/arithmetic.md §10). Every accessor names the
// full key path in its error, so a refused file says exactly which field is wrong.

struct MetadataReader {
    func member(_ object: JSONValue, _ key: String, _ path: String) throws(ModelFileError) -> JSONValue {
        guard case .object = object else {
            throw ModelFileError.invalid(.metadata, path, "must be a JSON object")
        }
        guard let value = object[key] else {
            throw ModelFileError.invalid(.metadata, join(path, key), "is missing")
        }
        return value
    }

    func object(_ object: JSONValue, _ key: String, _ path: String) throws(ModelFileError) -> JSONValue {
        let v = try member(object, key, path)
        guard case .object = v else { throw ModelFileError.invalid(.metadata, join(path, key), "must be a JSON object") }
        return v
    }

    func int(_ object: JSONValue, _ key: String, _ path: String) throws(ModelFileError) -> Int64 {
        let v = try member(object, key, path)
        switch v {
        case let .int(i): return i
        case let .double(d) where d.isFinite && d == d.rounded() && abs(d) < 9.0e15: return Int64(d)
        default: throw ModelFileError.invalid(.metadata, join(path, key), "must be an integer, found \(v.serialized)")
        }
    }

    func double(_ object: JSONValue, _ key: String, _ path: String) throws(ModelFileError) -> Double {
        let v = try member(object, key, path)
        let d: Double
        switch v {
        case let .int(i): d = Double(i)
        case let .double(x): d = x
        default: throw ModelFileError.invalid(.metadata, join(path, key), "must be a number, found \(v.serialized)")
        }
        guard d.isFinite else { throw ModelFileError.invalid(.range, join(path, key), "must be finite, found \(d)") }
        return d
    }

    func string(_ object: JSONValue, _ key: String, _ path: String) throws(ModelFileError) -> String {
        let v = try member(object, key, path)
        guard case let .string(s) = v else { throw ModelFileError.invalid(.metadata, join(path, key), "must be a string") }
        return s
    }

    /// `(bits, scale, zero_point)` of `name` under `section`, with bits in `allowedBits`.
    func quant(_ section: JSONValue, _ sectionName: String, _ name: String, allowedBits: ClosedRange<Int>, evenOnly: Bool) throws(ModelFileError) -> QuantParams {
        let entry = try object(section, name, sectionName)
        let path = join(sectionName, name)
        let bits = try int(entry, "bits", path)
        let scale = try double(entry, "scale", path)
        let z = try int(entry, "zero_point", path)
        return try Self.checkedQuant(bits: bits, scale: scale, zeroPoint: z, path: path, allowedBits: allowedBits, evenOnly: evenOnly)
    }

    /// `(m, n)` of requantization `name`.
    func requant(_ section: JSONValue, _ name: String) throws(ModelFileError) -> Requant {
        let entry = try object(section, name, "requant")
        let path = join("requant", name)
        let m = try Self.checkMultiplier(try int(entry, "m", path), join(path, "m"))
        let n = try Self.checkShift(try int(entry, "n", path), path)
        return Requant(m: m, n: n)
    }

    /// `(m1, m2, n)` of addition `name`.
    func addRequant(_ section: JSONValue, _ name: String) throws(ModelFileError) -> AddRequant {
        let entry = try object(section, name, "requant")
        let path = join("requant", name)
        let m1 = try Self.checkMultiplier(try int(entry, "m1", path), join(path, "m1"))
        let m2 = try Self.checkMultiplier(try int(entry, "m2", path), join(path, "m2"))
        let n = try Self.checkShift(try int(entry, "n", path), path)
        return AddRequant(m1: m1, m2: m2, n: n)
    }

    // The range rules of §2 and P3, shared by the model file and by `QuantizedModel(integers:)`.

    static func checkedQuant(bits: Int64, scale: Double, zeroPoint z: Int64, path: String, allowedBits: ClosedRange<Int>, evenOnly: Bool) throws(ModelFileError) -> QuantParams {
        let allowed = evenOnly ? "4, 6 or 8" : "\(allowedBits.lowerBound) ... \(allowedBits.upperBound)"
        guard bits >= Int64(allowedBits.lowerBound), bits <= Int64(allowedBits.upperBound), !evenOnly || bits % 2 == 0 else {
            throw ModelFileError.invalid(.range, path + ".bits", "\(bits) bits is not allowed here (\(allowed), docs/arithmetic.md §2)")
        }
        guard scale > 0 else { throw ModelFileError.invalid(.range, path + ".scale", "must be positive, found \(scale)") }
        let b = Int(bits)
        guard z >= contractLo(b), z <= contractHi(b) else {
            throw ModelFileError.invalid(.range, path + ".zero_point", "\(z) is outside \(contractLo(b)) ... \(contractHi(b)) for \(b) bits")
        }
        return QuantParams(bits: b, scale: scale, zeroPoint: Int32(z))
    }

    static func checkMultiplier(_ m: Int64, _ path: String) throws(ModelFileError) -> Int64 {
        guard m >= 0, m <= 65535 else {
            throw ModelFileError.invalid(.range, path, "multiplier \(m) is outside 0 ... 65535 (P3)")
        }
        return m
    }

    static func checkShift(_ n: Int64, _ path: String) throws(ModelFileError) -> Int {
        guard n >= 0, n <= 40 else {
            throw ModelFileError.invalid(.range, path + ".n", "shift \(n) is outside 0 ... 40 (P3)")
        }
        return Int(n)
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
}
