import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which implementation of the 16-bit matrix product (with its requantization) the software engine
/// runs. Every variant gives the same integers (exact arithmetic; the vector tests run each one the
/// CPU has); they differ only in speed. Chosen once per engine: `KernelVariant.selected` unless a
/// caller passes one.
public enum KernelVariant: String, Sendable, CaseIterable, Codable {
    /// The Swift kernel compiled for the baseline instruction set (SSE2 on x86-64, NEON on ARM64).
    case portable
    /// C, AVX2 (x86-64 from Haswell / Zen on).
    case avx2
    /// C, AVX-512 with VNNI (`vpdpwssd`).
    case avx512
    /// C, Advanced SIMD intrinsics (aarch64 builds only).
    case neon

    /// The C variant's id in CKernels; nil for the Swift kernel.
    var cVariant: Int32? {
        switch self {
        case .portable: return nil
        case .avx2: return Int32(AIOT_KERNEL_AVX2)
        case .avx512: return Int32(AIOT_KERNEL_AVX512)
        case .neon: return Int32(AIOT_KERNEL_NEON)
        }
    }

    /// The C product for this variant; nil for the Swift kernel or when the CPU lacks the variant.
    var linear16: aiot_linear16_fn? {
        cVariant.flatMap { aiot_kernel_linear16($0) }
    }

    /// The C residual-and-norm step for this variant; nil as for `linear16`.
    var addNorm: aiot_add_norm_fn? {
        cVariant.flatMap { aiot_kernel_add_norm($0) }
    }

    /// The C softmax for this variant; nil as for `linear16`.
    var softmax: aiot_softmax_fn? {
        cVariant.flatMap { aiot_kernel_softmax($0) }
    }

    /// The C packed-weight product for this variant; nil where the variant has none.
    var linear16p: aiot_linear16p_fn? {
        cVariant.flatMap { aiot_kernel_linear16p($0) }
    }

    /// The C packed product on a 16-bit input split into halves; nil where the variant has none.
    var linear16pWide: aiot_linear16p_wide_fn? {
        cVariant.flatMap { aiot_kernel_linear16p_wide($0) }
    }

    /// Whether this build contains the variant and this CPU can execute it.
    public var isSupported: Bool {
        guard let c = cVariant else { return true }
        return aiot_kernel_supported(c) != 0
    }

    /// Every variant this process can run, slowest first (`portable` always).
    public static var supported: [KernelVariant] { allCases.filter(\.isSupported) }

    /// The fastest variant this CPU executes.
    public static var best: KernelVariant {
        for v in [KernelVariant.avx512, .avx2, .neon] where v.isSupported { return v }
        return .portable
    }

    /// The variant named `name` ("portable", "avx2", "avx512", "neon"; "auto" or nil: `best`),
    /// refused when unknown or when this CPU cannot run it.
    public static func resolve(_ name: String?) throws(KernelSelectionError) -> KernelVariant {
        guard let name, !name.isEmpty, name != "auto" else { return best }
        guard let v = KernelVariant(rawValue: name) else {
            throw KernelSelectionError("unknown kernel variant '\(name)': use auto, " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard v.isSupported else {
            throw KernelSelectionError("kernel variant '\(name)' is not available on this CPU/build; available: " + supported.map(\.rawValue).joined(separator: ", "))
        }
        return v
    }

    /// The environment variable that overrides the automatic choice (for tests and comparisons).
    public static let environmentVariable = "AIOT_KERNEL"

    /// `AIOT_KERNEL` resolved once per process; a bad value is kept as its error, which the tools
    /// report at start (`SoftwareEngine` itself then uses `best`).
    public static let environmentChoice: Result<KernelVariant, KernelSelectionError> = {
        let value = getenv(environmentVariable).map { String(cString: $0) }
        do throws(KernelSelectionError) {
            return .success(try resolve(value))
        } catch {
            return .failure(KernelSelectionError("\(environmentVariable): \(error.message)"))
        }
    }()

    /// The variant a `SoftwareEngine` gets when the caller names none.
    public static var selected: KernelVariant {
        (try? environmentChoice.get()) ?? best
    }
}

/// A kernel variant that was asked for cannot be used.
public struct KernelSelectionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
