// Issue 11: the energy log is fsynced every log.fsync_interval_s, not only at shutdown. The core's
// tick (once a second from the ticker) is driven here with the test's clock; EnergyLog counts the
// records covered by its last successful fsync(2).
import Testing
import Foundation
@testable import AIOTDaemon

@Suite struct EnergyLogFsync {
    @Test func recordsAreFsyncedWithinTheInterval() throws {
        let rig = try CoreRig(fleet, log: "fsync_interval_s = 2")
        #expect(rig.core.config.logFsyncSeconds == 2)
        let start = rig.core.lastFsync
        // Records written, the interval not yet over: not synced yet.
        for k in 0..<30 { rig.send("a", step: k, signal(k, 0)) }
        let written = rig.core.energyLog.recordsWritten
        #expect(written == 7)
        rig.core.tick(now: start + 1.9)
        #expect(rig.core.energyLog.syncedRecords == 0)
        // The interval is over: everything written so far is on the disk.
        rig.core.tick(now: start + 2)
        #expect(rig.core.energyLog.syncedRecords == written)
        for k in 30..<33 { rig.send("a", step: k, signal(k, 0)) }
        rig.core.tick(now: start + 3.5)
        #expect(rig.core.energyLog.syncedRecords == written, "next fsync is due at +4 s")
        rig.core.tick(now: start + 4.0)
        #expect(rig.core.energyLog.syncedRecords == written + 3)
        #expect(rig.core.energyLog.fsyncs == 2)
    }
}
