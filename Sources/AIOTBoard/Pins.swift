// The FT2232H pin map of docs/board.md, in one place.

/// Channel A low byte (ADBUS): SPI to the accelerator and the configuration flash, and status pins.
public enum PinA {
    public static let sck: UInt8 = 1 << 0
    public static let mosi: UInt8 = 1 << 1
    public static let miso: UInt8 = 1 << 2
    public static let accCS: UInt8 = 1 << 3      // ACC_CS_N, active low
    public static let flashCS: UInt8 = 1 << 4    // FLASH_CS_N, active low (GPIOL0)
    public static let busy: UInt8 = 1 << 5       // BUSY from the accelerator (GPIOL1: MPSSE 0x88/0x89)
    public static let done: UInt8 = 1 << 6       // DONE from the FPGA (GPIOL2)
    public static let initB: UInt8 = 1 << 7      // INIT_B from the FPGA (GPIOL3)
    /// On the iCE40 board the same two pins are CDONE (ADBUS6) and CRESET_B (ADBUS7, host output
    /// while holding the FPGA in reset, input otherwise; pulled up on the board).
    public static let cdone: UInt8 = 1 << 6
    public static let cresetB: UInt8 = 1 << 7

    /// Both chip selects high, SCK low: the idle state.
    public static let idleValue: UInt8 = accCS | flashCS
    /// SCK, MOSI and both chip selects driven.
    public static let busDirection: UInt8 = sck | mosi | accCS | flashCS
    /// While the FPGA configures itself from the flash, the host lets go of the shared flash lines
    /// (SCK, MOSI, FLASH_CS_N) and only keeps ACC_CS_N high.
    public static let configDirection: UInt8 = accCS
}

/// Channel A high byte (ACBUS).
public enum PinAHigh {
    /// PROGRAM_B through an open-drain buffer: output 0 holds the FPGA in reset.
    public static let programB: UInt8 = 1 << 0
    public static let direction: UInt8 = programB
}

/// Channel B low byte (BDBUS): I2C master to the PAC1934 monitors (SDA out and in tied together).
public enum PinB {
    public static let scl: UInt8 = 1 << 0
    public static let sdaOut: UInt8 = 1 << 1
    public static let sdaIn: UInt8 = 1 << 2
}

/// Which MPSSE channel of the FT2232H a command buffer is meant for.
public enum Channel: Int, Sendable, Codable, CaseIterable {
    case a = 0, b = 1
}
