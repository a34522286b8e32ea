import Foundation
import Logging
import TradewireBus

@testable import TradewireJournal

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A logger that drops everything.
let quietLogger = Logger(label: "tradewire.journal.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A fresh directory under /tmp for one test; `remove()` deletes it and everything in it.
struct TemporaryDirectory {
    let path: String

    init() {
        path = "/tmp/twj-" + UUID().uuidString.prefix(13).lowercased()
        mkdir(path, 0o700)
    }

    /// A path inside the directory (not created).
    func child(_ name: String) -> String { path + "/" + name }

    func remove() {
        chmod(path, 0o700)
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Opens a journal with the quiet logger.
func openJournal(_ directory: String, sync: JournalSync = .normal) throws(JournalError) -> SQLiteJournal {
    try SQLiteJournal.open(directory: directory, sync: sync, logger: quietLogger)
}

/// A record with readable defaults; `data` is `{"n":seq}`.
func makeRecord(_ seq: Int, type: String = "test.event", at time: Double = 1_764_500_000.25) -> JournalRecord {
    JournalRecord(
        seq: seq, type: type, timestamp: Date(timeIntervalSince1970: time), data: Array("{\"n\":\(seq)}".utf8),
        metadata: Array("{}".utf8), dataType: "object", subscriberCount: seq % 3)
}

/// `count` records from `first` on.
func makeRecords(from first: Int, count: Int, type: String = "test.event") -> [JournalRecord] {
    (first..<(first + count)).map { makeRecord($0, type: type) }
}

/// The error `body` throws, if it is a ``JournalError``.
func journalError<T>(_ body: () throws -> T) -> JournalError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? JournalError
    }
}

/// A python3 script run as a child process, its stdout read line by line.
final class PythonChild {
    let process = Process()
    private let output = Pipe()
    private var buffer: [UInt8] = []

    init(script: String, arguments: [String]) throws {
        let python = "/usr/bin/python3"
        if FileManager.default.isExecutableFile(atPath: python) {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", script] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script] + arguments
        }
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The next line the child prints, or nil once it has exited.
    func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer.append(contentsOf: chunk)
        }
    }

    /// SIGKILLs `pid` (the child's, or one it reported) and waits for the child to end.
    func sigkill(pid: Int32? = nil) {
        _ = kill(pid ?? process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits for the child to end; its exit status.
    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Runs a python3 script to completion; true when it exited 0.
func runPython(_ script: String, _ arguments: String...) throws -> Bool {
    let child = try PythonChild(script: script, arguments: arguments)
    while child.readLine() != nil {}
    return child.wait() == 0
}

/// `lstat`'s permission bits of `path`, or nil.
func permissions(_ path: String) -> UInt32? {
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    return UInt32(status.st_mode) & 0o7777
}
