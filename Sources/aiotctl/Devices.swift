import AIOTBoard
import ArgumentParser

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List FT2232H devices (0403:6010) on USB.")

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let list: [USBDevice]
        do { list = try listUSBDevices() } catch { fail(error, json: json) }
        if json { printJSON(list) } else if list.isEmpty {
            print("no FTDI device (0403:6010) found; check the cable and the udev rule")
        } else {
            for d in list {
                print(d.error.map { "\(d.address)  \($0)" } ?? "\(d.address)  \(d.manufacturer ?? "?") \(d.description ?? "?")")
            }
        }
        if list.contains(where: { $0.error != nil }) { throw ExitCode(2) }
    }
}
