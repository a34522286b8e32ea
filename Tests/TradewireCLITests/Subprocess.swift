import Foundation
import Synchronization
import Testing
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// What a finished `tradewire` run printed and how it exited.
struct ProcessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

struct SubprocessError: Error, CustomStringConvertible {
    var description: String
}

/// The built executables, found from this file's path: `<repo>/.build/debug/<name>`.
enum Binaries {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TradewireCLITests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repo root

    static func url(_ name: String) throws -> URL {
        let url = repoRoot.appendingPathComponent(".build/debug/\(name)")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw SubprocessError(
                description: "\(url.path) is missing: build it first with `swift build --product \(name)`")
        }
        return url
    }
}

/// A running process whose stdout and stderr go to temporary files (no pipe can fill up).
final class Subprocess: @unchecked Sendable {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    init(_ executable: URL, _ arguments: [String], stdin: String? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("twcli-\(UUID().uuidString)")
        stdoutURL = base.appendingPathExtension("out")
        stderrURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        if let stdin {
            let pipe = Pipe()
            process.standardInput = pipe
            try process.run()
            try pipe.fileHandleForWriting.write(contentsOf: Data(stdin.utf8))
            try pipe.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: stdoutURL)
        try? FileManager.default.removeItem(at: stderrURL)
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits for the exit; past `timeout` the process is killed and the wait fails.
    func finish(timeout: Duration = .seconds(20)) async throws -> ProcessResult {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                process.terminate()
                process.waitUntilExit()
                throw SubprocessError(
                    description: "\(process.arguments ?? []) did not exit within \(timeout); stderr: \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}

extension Subprocess {
    /// Waits until the process has written `text` to its stderr (fails when it exits first
    /// or after `timeout`).
    func waitForStderr(_ text: String, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !stderr.contains(text) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw SubprocessError(description: "\(process.arguments ?? []) never wrote \(text): \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// SIGTERM and wait for the exit; past `timeout` SIGKILL, and the wait fails.
    @discardableResult
    func terminate(timeout: Duration) async throws -> ProcessResult {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw SubprocessError(description: "\(process.arguments ?? []) ignored SIGTERM for \(timeout): \(stderr)")
        }
        return try await finish()
    }

    /// The cleanup for `defer`: SIGTERM, up to 5 s, then SIGKILL.
    func terminateNow() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<500 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A `tradewired` of its own on a short unique socket path; stopped with SIGTERM.
final class TestDaemon: @unchecked Sendable {
    private static let counter = Atomic<Int>(0)
    let socket: String
    /// The data directory the storage mode gave this daemon (removed by ``stop()``).
    let dataDirectory: String?
    private let subprocess: Subprocess

    init() async throws {
        let n = Self.counter.add(1, ordering: .relaxed).newValue
        socket = "/tmp/twcli-\(getpid())-\(n).sock"
        let storage = TestStorage.arguments(adding: ["--socket", socket, "--log-level", "warning"])
        dataDirectory = storage.dataDirectory
        subprocess = try Subprocess(try Binaries.url("tradewired"), storage.arguments)
        let deadline = ContinuousClock.now + .seconds(10)
        while !subprocess.stderr.contains("listening on") {
            guard subprocess.process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw SubprocessError(description: "tradewired did not start on \(socket): \(subprocess.stderr)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// SIGTERM, then wait for the exit.
    func stop() {
        if subprocess.process.isRunning { subprocess.process.terminate() }
        subprocess.process.waitUntilExit()
        if let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }
}

/// Runs `body` against a fresh daemon and always stops it.
func withDaemon(_ body: (TestDaemon) async throws -> Void) async throws {
    let daemon = try await TestDaemon()
    defer { daemon.stop() }
    try await body(daemon)
}

extension TestDaemon {
    /// Runs `tradewire ARGS --socket SOCKET` to completion.
    func tradewire(_ arguments: [String], stdin: String? = nil) async throws -> ProcessResult {
        try await Subprocess(try Binaries.url("tradewire"), arguments + ["--socket", socket], stdin: stdin).finish()
    }

    /// Starts `tradewire ARGS --socket SOCKET` without waiting.
    func start(_ arguments: [String]) throws -> Subprocess {
        try Subprocess(try Binaries.url("tradewire"), arguments + ["--socket", socket])
    }
}
