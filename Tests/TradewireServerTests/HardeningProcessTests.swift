import Foundation
import Synchronization
import Testing
import TradewireClient
import TradewireJSON
import TradewireRPC
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 7 against real processes: help, the socket's mode, file-descriptor limits, a
/// SIGTERM under load, and a client that never trusts a socket it should not.
@Suite(.serialized) struct HardeningProcessTests {
    static func binary(_ name: String) -> String { repositoryRoot.appendingPathComponent(".build/debug/\(name)").path }

    @Test func helpPrintsAndExitsZeroOnBothExecutables() throws {
        for name in ["tradewired", "tradewire"] {
            let (status, output) = try runCommand(Self.binary(name), ["--help"])
            #expect(status == 0, "\(name) --help exited \(status)")
            #expect(output.contains("USAGE: \(name)"))
        }
        let (_, daemonHelp) = try runCommand(Self.binary("tradewired"), ["--help"])
        // Every numeric flag documents its range.
        for flag in [
            "--history-capacity", "--max-message-bytes", "--max-connections", "--interval", "--seed", "--threads",
        ] {
            #expect(daemonHelp.contains(flag))
        }
        #expect(daemonHelp.contains("1...10000000") && daemonHelp.contains("1...67108864"))
    }

    @Test func theSocketIsCreatedWithItsModeAndNoPathIsEverChmodded() async throws {
        let path = uniqueSocketPath("mode")
        try await withDaemonProcess(path, arguments: ["--socket-mode", "660"]) { _ in
            var info = stat()
            #expect(lstat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660)
        }
        // A symlink swapped in at the path while daemons start must never have its target's
        // mode changed (bind, then chmod, used to follow it).
        let target = "/tmp/tws-\(getpid())-target"
        #expect(FileManager.default.createFile(atPath: target, contents: Data("root's".utf8)))
        chmod(target, 0o600)
        defer { unlink(target) }
        for _ in 0..<8 {
            let stop = Atomic<Bool>(false)
            let racer = Thread {
                while !stop.load(ordering: .relaxed) {
                    unlink(path)
                    symlink(target, path)
                }
            }
            racer.start()
            let daemon = try DaemonProcess(socketPath: path, arguments: ["--socket-mode", "660"])
            _ = await daemon.waitUntilListening(timeout: .seconds(5))
            _ = await daemon.stop()
            stop.store(true, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(20))
            var info = stat()
            #expect(stat(target, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600, "the symlink's target was chmod'ed")
        }
        unlink(path)
    }

    @Test func theSoftFileLimitIsRaisedAtStart() async throws {
        let path = uniqueSocketPath("nofile")
        let daemon = try DaemonProcess(socketPath: path, shellPrefix: "ulimit -Sn 48")
        #expect(await daemon.waitUntilListening())
        let sockets = try (0..<100).map { _ in try LineSocket(path: path) }
        var pongs = 0
        for socket in sockets {
            socket.setReadTimeout(seconds: 5)
            if socket.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)?["result"] == ["pong": true] {
                pongs += 1
            }
        }
        #expect(pongs == 100)
        #expect(await daemon.stop() == 0)
    }

    @Test func runningOutOfDescriptorsIsLogged() async throws {
        let path = uniqueSocketPath("emfile")
        let daemon = try DaemonProcess(socketPath: path, shellPrefix: "ulimit -n 48")
        #expect(await daemon.waitUntilListening())
        #expect(daemon.stderr.contains("daemon.fd_limit.low"))
        var sockets: [LineSocket] = []
        for _ in 0..<60 { if let socket = try? LineSocket(path: path) { sockets.append(socket) } }
        for socket in sockets.suffix(5) {
            socket.setReadTimeout(seconds: 1)
            _ = socket.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        }
        #expect(daemon.stderr.contains("server.accept.fd_exhausted"))
        sockets.removeAll()
        #expect(await daemon.stop() == 0)
    }

    /// 10 publishers and 6 readers (one throttled), SIGTERM in the middle: every reader gets
    /// every acknowledged event it matched, or an `events_dropped` naming it, then `shutdown`.
    /// Rounds of the load tests: 1 in `make test`, `TW_SOAK_ROUNDS` (e.g. 25 in `make soak`).
    static let soakRounds = max(1, ProcessInfo.processInfo.environment["TW_SOAK_ROUNDS"].flatMap { Int($0) } ?? 1)

    @Test func sigtermLosesNoAcknowledgedEvent() async throws {
        for round in 1...Self.soakRounds {
            try await sigtermRound(round, signal: round % 2 == 0 ? SIGINT : SIGTERM)
        }
    }

    private func sigtermRound(_ round: Int, signal: Int32) async throws {
        let path = uniqueSocketPath("flush")
        let daemon = try DaemonProcess(socketPath: path)
        #expect(await daemon.waitUntilListening())
        let readerSockets = try (0..<6).map { _ in try LineSocket(path: path) }
        for socket in readerSockets {
            socket.setReadTimeout(seconds: 30)
            let ack = socket.roundTrip(
                #"{"jsonrpc":"2.0","id":"s","method":"subscribe","params":{"event_type":"load.*"}}"#)
            #expect(ack?["result"]?["subscription"] != nil)
        }
        let readers = readerSockets.enumerated().map { index, socket in
            Task { await onThread { ReaderLog.read(socket, throttled: index == 5) } }
        }
        let payload = String(repeating: "p", count: 1000)
        let publishers = (0..<10).map { n in
            Task {
                await onThread { () -> [Int] in
                    guard let socket = try? LineSocket(path: path) else { return [] }
                    socket.setReadTimeout(seconds: 30)
                    var acked: [Int] = []
                    for chunk in 0..<100 {
                        let lines = (0..<50).map { i in
                            #"{"jsonrpc":"2.0","id":\#(chunk * 50 + i),"method":"publish","params":{"event_type":"load.p\#(n)","data":"\#(payload)"}}"#
                                + "\n"
                        }
                        socket.write(Array(lines.joined().utf8))
                        var answered = 0
                        while answered < 50, let line = socket.readLine() {
                            guard let value = try? JSONParser.parse(line), value["id"] != nil else { continue }
                            answered += 1
                            if let seq = value["result"]?["seq"]?.intValue { acked.append(seq) }
                        }
                        if answered < 50 { break }
                    }
                    return acked
                }
            }
        }
        // Later soak rounds stop at different moments of the load.
        try await Task.sleep(for: .milliseconds(1500 + (round - 1) % 5 * 200))
        kill(daemon.process.processIdentifier, signal)
        var acked = Set<Int>()
        for publisher in publishers { acked.formUnion(await publisher.value) }
        #expect(await daemon.waitForExit() == 0)
        #expect(!acked.isEmpty)
        for (index, reader) in readers.enumerated() {
            let log = await reader.value
            #expect(log.sawShutdown, "round \(round): reader \(index) got no shutdown notice")
            let missing = acked.filter { !log.events.contains($0) && !log.covered($0) }
            #expect(missing.isEmpty, "round \(round): reader \(index) lost \(missing.count) acknowledged events")
        }
    }

    /// Ephemeral restarts (a start token in the ids) and journaled ones (the count goes on).
    @Test(arguments: ["ephemeral", "journal"]) func orderIDsStayUniqueAcrossRestarts(_ storage: String) async throws {
        let path = uniqueSocketPath("orders")
        let directory = temporaryDataDirectory("orders")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = storage == "journal" ? ["--data-dir", directory] : ["--ephemeral"]
        var seen: [String] = []
        // Other symbols at each start, so that each start trades (a journaled book already
        // holds the first start's positions).
        for symbols in [["AAPL", "MSFT", "GOOGL"], ["SPY", "QQQ", "NVDA"]] {
            try await withDaemonProcess(path, arguments: arguments) { _ in
                let client = try await TradewireClient.connect(socketPath: path)
                let run = try await client.call(
                    "run_pipeline", ["symbols": .array(symbols.map { JSONValue($0) })], timeout: .seconds(60))
                let ids = (run["execution_results"]?.arrayValue ?? []).compactMap { $0["order_id"]?.stringValue }
                #expect(!ids.isEmpty, "each start's first iteration trades")
                seen += ids
                await client.close()
            }
        }
        #expect(Set(seen).count == seen.count, "an order id was issued twice: \(seen)")
        if storage == "journal" {
            #expect(seen == (1...seen.count).map { String(format: "paper-%06d", $0) }, "the count goes on")
        }
    }

    // MARK: clients never trust the wrong socket, and never hang

    @Test func theClientRefusesAServerRunByAnotherUser() async throws {
        let directory = "/tmp/tws-\(getpid())-fake"
        mkdir(directory, 0o777)
        chmod(directory, 0o777)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/s.sock"
        let fake = try FakeServer(path: path, mode: "record", user: "nobody")
        defer { fake.stop() }
        #expect(fake.waitUntilListening())
        let error = await connectError(path)
        guard case .untrusted(_, let reason)? = error else {
            Issue.record("expected an untrusted refusal, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("uid 65534"))
        try await Task.sleep(for: .milliseconds(200))
        #expect(fake.receivedBytes == 0, "the client sent bytes to an impostor")
    }

    @Test func theClientChecksTheDefaultDirectory() async throws {
        let directory = SocketPath.fallbackDirectory
        let backup = directory + ".tws-backup-\(getpid())"
        let hadOne = rename(directory, backup) == 0
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            if hadOne { rename(backup, directory) }
        }
        let path = directory + "/tradewire.sock"
        func refusal() async -> String? {
            guard case .untrusted(_, let reason)? = await connectError(path) else { return nil }
            return reason
        }
        let previous = umask(0)
        mkdir(directory, 0o755)
        umask(previous)
        #expect(await refusal()?.contains("mode 0755") == true)
        rmdir(directory)
        let real = "/tmp/tws-\(getpid())-real"
        mkdir(real, 0o700)
        defer { rmdir(real) }
        symlink(real, directory)
        #expect(await refusal()?.contains("symbolic link") == true)
        unlink(directory)
        guard case .cannotConnect(_, let reason)? = await connectError(path) else {
            Issue.record("connected without a socket directory")
            return
        }
        #expect(reason.contains("does not exist"))
    }

    @Test(arguments: ["deep", "long", "silent"])
    func aClientCallNeverHangs(mode: String) async throws {
        let path = uniqueSocketPath("fake-\(mode)")
        let fake = try FakeServer(path: path, mode: mode)
        defer { fake.stop() }
        #expect(fake.waitUntilListening())
        let client = try await TradewireClient.connect(
            socketPath: path, maxMessageBytes: 4096, defaultTimeout: .milliseconds(500))
        let started = ContinuousClock.now
        var failure: ClientError?
        do { _ = try await client.call("get_event_history") } catch { failure = error }
        switch (mode, failure) {
        case ("silent", .timeout?): break
        case ("deep", .protocolViolation?), ("long", .protocolViolation?): break
        default: Issue.record("\(mode): unexpected \(String(describing: failure))")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        await client.close()
    }
}

/// Why connecting failed (nil when it succeeded; the connection is then closed).
func connectError(_ path: String) async -> ClientError? {
    do {
        let client = try await TradewireClient.connect(socketPath: path)
        await client.close()
        return nil
    } catch {
        return error
    }
}

/// What one subscriber received.
struct ReaderLog: Sendable {
    var events = Set<Int>()
    var drops: [ClosedRange<Int>] = []
    var sawShutdown = false

    func covered(_ seq: Int) -> Bool { drops.contains { $0.contains(seq) } }

    static func read(_ socket: LineSocket, throttled: Bool) -> ReaderLog {
        var log = ReaderLog()
        var count = 0
        while let line = socket.readLine() {
            count += 1
            if throttled, count % 10 == 0 { usleep(5000) }
            guard let value = try? JSONParser.parse(line) else { continue }
            switch value["method"]?.stringValue {
            case "event":
                if let seq = value["params"]?["event"]?["seq"]?.intValue { log.events.insert(seq) }
            case "events_dropped":
                if let first = value["params"]?["first_seq"]?.intValue,
                    let last = value["params"]?["last_seq"]?.intValue
                {
                    log.drops.append(first...last)
                }
            case "shutdown": log.sawShutdown = true
            default: break
            }
        }
        return log
    }
}

/// A stand-in server (python3) for what a real daemon never does: run as another user,
/// answer too deep or too long, or never answer.
final class FakeServer: @unchecked Sendable {
    static let script = """
        import os, signal, socket, sys
        signal.alarm(120)  # never outlive a test run, whatever happens to the test
        path, mode, record = sys.argv[1], sys.argv[2], sys.argv[3]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path); s.listen(8)
        open(record + ".ready", "w").close()
        received = 0
        while True:
            c, _ = s.accept()
            c.settimeout(5)
            try:
                while True:
                    data = c.recv(65536)
                    if not data:
                        break
                    received += len(data)
                    with open(record, "w") as f:
                        f.write(str(received))
                    if mode == "deep":
                        c.sendall(b'{"jsonrpc":"2.0","id":1,"result":' + b'[' * 600 + b']' * 600 + b'}\\n')
                    elif mode == "long":
                        c.sendall(b'{"jsonrpc":"2.0","id":1,"result":"' + b'x' * 8000 + b'"}\\n')
            except Exception:
                pass
            c.close()
        """

    let process = Process()
    let record: String

    init(path: String, mode: String, user: String? = nil) throws {
        record = path + ".record"
        unlink(path)
        let python = ["python3", "-c", Self.script, path, mode, record]
        if let user {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", user, "--"] + python
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = python
        }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    func waitUntilListening() -> Bool {
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: record + ".ready") { return true }
            usleep(20_000)
        }
        return false
    }

    var receivedBytes: Int {
        (try? String(contentsOfFile: record, encoding: .utf8)).flatMap { Int($0) } ?? 0
    }

    func stop() {
        // The server itself (python under runuser, or env's exec), found by its unique path;
        // SIGKILL, since a child spawned by the test runner may inherit a blocked SIGTERM.
        let pkill = Process()
        pkill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        pkill.arguments = ["-9", "-f", record]
        try? pkill.run()
        pkill.waitUntilExit()
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        unlink(record)
        unlink(record + ".ready")
    }
}
