import Foundation
import Synchronization
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The built `tradewired` binary, run as a child process.
final class DaemonProcess: @unchecked Sendable {
    // Mutated only by the test that owns it.
    static var binary: String { repositoryRoot.appendingPathComponent(".build/debug/tradewired").path }

    let process = Process()
    let socketPath: String
    /// The data directory the storage mode gave this daemon (removed by ``stop(timeout:)``).
    let dataDirectory: String?
    private let errorPipe = Pipe()
    private let output = OutputBuffer()

    /// Starts the daemon; does not wait for it to listen. `shellPrefix` runs first in a bash
    /// that then execs the daemon (e.g. `ulimit -Sn 32`).
    init(
        socketPath: String, arguments: [String] = [], environment: [String: String] = [:], shellPrefix: String? = nil
    ) throws {
        self.socketPath = socketPath
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw DaemonError("\(Self.binary) is missing: run `swift build` first")
        }
        let storage = TestStorage.arguments(adding: arguments, environment: environment)
        dataDirectory = storage.dataDirectory
        let daemonArguments = ["--socket", socketPath, "--log-level", "warning"] + storage.arguments
        if let shellPrefix {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", shellPrefix + "; exec \"$0\" \"$@\"", Self.binary] + daemonArguments
        } else {
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = daemonArguments
        }
        var env = ProcessInfo.processInfo.environment
        for key in ["TRADEWIRE_SOCKET", "SYMBOLS", "USE_ASYNC_ORCHESTRATOR"] { env[key] = nil }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        let output = self.output
        errorPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { output.text.withLock { $0 += String(decoding: data, as: UTF8.self) } }
        }
        try process.run()
    }

    deinit {
        if let dataDirectory, !process.isRunning { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }

    var stderr: String { output.text.withLock { $0 } }

    /// Waits for `listening on PATH`, or for the process to exit (returns false).
    func waitUntilListening(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stderr.contains("listening on \(socketPath)") { return true }
            if !process.isRunning { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Waits for the process to end by itself.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        guard !process.isRunning else { return nil }
        try? await Task.sleep(for: .milliseconds(50))  // let the pipe deliver its last bytes
        return process.terminationStatus
    }

    /// SIGTERM, then the exit status (SIGKILL after the timeout: never left running).
    @discardableResult
    func stop(timeout: Duration = .seconds(20)) async -> Int32? {
        defer { if let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) } }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        if let status = await waitForExit(timeout: timeout) { return status }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return nil
    }
}

struct DaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with a started daemon and always stops it.
func withDaemonProcess(
    _ socketPath: String, arguments: [String] = [], environment: [String: String] = [:],
    _ body: (DaemonProcess) async throws -> Void
) async throws {
    let daemon = try DaemonProcess(socketPath: socketPath, arguments: arguments, environment: environment)
    guard await daemon.waitUntilListening() else {
        await daemon.stop()
        throw DaemonError("daemon did not start: \(daemon.stderr)")
    }
    do {
        try await body(daemon)
    } catch {
        await daemon.stop()
        throw error
    }
    await daemon.stop()
}

/// Runs a command to completion; returns its exit status and combined output.
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (
    Int32, String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Collects a child's stderr as it arrives.
final class OutputBuffer: Sendable {
    let text = Mutex<String>("")
}
