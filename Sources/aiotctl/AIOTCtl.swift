import ArgumentParser

@main
struct AIOTCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aiotctl",
        abstract: "Companion tool for aiot-runtime: models, vectors, the board and the energy log.",
        subcommands: [
            Infer.self, CheckVectors.self, Kernels.self,
            Devices.self, BitstreamInfoCommand.self, FlashCommand.self, BootCommand.self, UploadWeights.self,
            StatusCommand.self, PowerCommand.self, SimCommand.self, Energy.self, SignCommand.self, AccuracyCommand.self, CalibrateEnergy.self,
            KeygenCommand.self, SignArtifactCommand.self, DeployCommand.self,
        ]
    )
}
