// Which board is on the cable: its FPGA, how the host holds it in reset, where images live in its
// flash, and its power monitors. The accelerator's register map and SPI protocol are the same on
// every board; only configuration and flashing differ.

public enum FPGAFamily: String, Sendable, Codable, Equatable {
    /// Xilinx 7-series: PROGRAM_B / INIT_B / DONE, multiboot with fallback (UG470).
    case xilinx7
    /// Lattice iCE40: CRESET_B / CDONE, warm boot between four images (TN1248), no fallback.
    case ice40
}

/// The pin that holds the FPGA in reset while the host owns the flash.
public enum ResetLine: String, Sendable, Codable, Equatable {
    /// PROGRAM_B on ACBUS0 through an open-drain buffer (the XC7S15 gateway board).
    case programBOnACBUS0
    /// CRESET_B on ADBUS7 with a pull-up (the iCEBreaker): driven low = reset, input = released.
    case cresetOnADBUS7
}

public struct BoardProfile: Sendable, Equatable {
    public var name: String
    public var fpga: FPGAPart
    public var layout: SlotLayout
    public var resetLine: ResetLine
    /// PAC1934 monitors on channel B (empty: the board has none).
    public var powerMonitorAddresses: [UInt8]
    public var railNames: [[String]]
    public var senseOhms: Double

    public var family: FPGAFamily { fpga.family }

    /// ADBUS bits the host drives low, in addition to the bus, while the FPGA is held in reset.
    public var resetHoldMask: UInt8 { resetLine == .cresetOnADBUS7 ? PinA.cresetB : 0 }

    /// The gateway board of docs/board.md: XC7S15, S25FL128S/256S, two PAC1934.
    public static let xc7s15Gateway = BoardProfile(
        name: "xc7s15", fpga: .xc7s15, layout: .xilinx7, resetLine: .programBOnACBUS0,
        powerMonitorAddresses: [0x11, 0x12],
        railNames: [["VCCINT 1.0V", "VCCAUX 1.8V", "VCCO 3.3V", "VCCBRAM 1.0V"],
                    ["FLASH 3.3V", "FT2232H 3.3V", "BOARD 5V", "SPARE"]],
        senseOhms: 0.82)

    /// An iCEBreaker-class board: iCE40UP5K, FT2232H, 16 MiB W25Q128JV, flash SS on ADBUS4, CDONE on
    /// ADBUS6 and CRESET_B on ADBUS7 (as the iCEBreaker wires them, and iceprog drives them); the
    /// accelerator's chip select and BUSY on ADBUS3 / ADBUS5, this project's assignment (docs/board.md).
    /// No power monitors.
    public static let icebreaker = BoardProfile(
        name: "icebreaker", fpga: .ice40up5k, layout: .ice40, resetLine: .cresetOnADBUS7,
        powerMonitorAddresses: [], railNames: [], senseOhms: 0)

    public static let all: [BoardProfile] = [.xc7s15Gateway, .icebreaker]

    public static func named(_ name: String) -> BoardProfile? { all.first { $0.name == name } }
}
