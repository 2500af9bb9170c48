import AIOTBoard
import AIOTModel
import ArgumentParser

struct UploadWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload-weights",
        abstract: "Write a model's parameter image into the accelerator, check its CRC and read-back, set the model identity.")

    @Argument(help: "Model file (.safetensors).")
    var model: String
    @Flag(help: "Print where every tensor sits in the parameter image and exit (no board needed).")
    var layout = false
    @OptionGroup var board: BoardOptions

    struct LayoutReport: Encodable {
        var bytes: Int
        var crc: String
        var layout: ParameterImage.Layout
    }

    func run() throws {
        let m: QuantizedModel
        do { m = try QuantizedModel(contentsOf: model) } catch { fail(error, json: board.json) }
        let image: [UInt8]
        do { image = try ParameterImage.serialize(ParameterSet(model: m)) } catch { fail(error, json: board.json) }
        if layout {
            let p = ParameterSet(model: m)
            let lay = ParameterImage.layout(shape: m.shape, scoreBits: (0..<m.shape.layers).map { p.activations["layers.\($0).scores"]!.bits },
                                            skip: p.hasSkipPath)
            let r = LayoutReport(bytes: image.count, crc: "0x" + String(CRC32.checksum(image), radix: 16).leftPad(8), layout: lay)
            if board.json { printJSON(r); return }
            print("parameter image: \(r.bytes) bytes, CRC-32 \(r.crc)")
            print("tables: activations @\(lay.activationTable) x\(lay.activationCount), weights @\(lay.weightTable) x\(lay.weightCount), requant @\(lay.requantTable) x\(lay.requantCount), directory @\(lay.directory)")
            for e in lay.tensors { print("  \(String(e.offset).leftPadSpaces(6))  \(e.name)  \(e.count) x \(e.elementBytes) B") }
            return
        }
        guard let id = identityBytes(m.identity) else { fail(CLIError("model identity is not a SHA-256"), json: board.json) }
        try withBoard(board, { b in try b.link.upload(image: image, identity: id) }, text: { r in
            var s = "uploaded \(r.bytes) bytes; CRC-32 0x\(String(r.crc, radix: 16).leftPad(8)) matches the accelerator's; read-back identical\n"
            s += "model identity \(r.identity)\nUSB: \(r.roundTrips) round trips"
            if let t = r.seconds { s += String(format: ", modelled %.1f ms", t * 1000) }
            return s
        })
    }
}

extension String {
    func leftPadSpaces(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
}
