import Foundation

/// How test daemons keep their events: `TW_TEST_STORAGE=journal` (the default: each daemon
/// gets a fresh data directory of its own) or `ephemeral` (`--ephemeral`). The level-1
/// suites run in both modes.
public enum TestStorage: String, Sendable {
    case journal
    case ephemeral

    /// The mode the environment asks for (an unknown value is a test setup error).
    public static var current: TestStorage {
        let value = ProcessInfo.processInfo.environment["TW_TEST_STORAGE"] ?? ""
        if value.isEmpty { return .journal }
        guard let mode = TestStorage(rawValue: value) else {
            fatalError("TW_TEST_STORAGE must be journal or ephemeral, got \(value)")
        }
        return mode
    }

    /// The daemon arguments that choose the storage, unless `arguments` or `environment`
    /// already choose it; with the data directory to remove afterwards.
    public static func arguments(adding arguments: [String], environment: [String: String] = [:]) -> (
        arguments: [String], dataDirectory: String?
    ) {
        let chosen = arguments.contains { $0 == "--ephemeral" || $0 == "--data-dir" || $0.hasPrefix("--data-dir=") }
        guard !chosen, environment["TRADEWIRE_DATA_DIR"] == nil else { return (arguments, nil) }
        switch current {
        case .ephemeral:
            return (arguments + ["--ephemeral"], nil)
        case .journal:
            let directory = "/tmp/tw-data-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            return (arguments + ["--data-dir", directory], directory)
        }
    }
}
