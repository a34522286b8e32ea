import Foundation
import Testing
import TradewireClient
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's life as a process (PROTOCOL §1 and §7): start-up, permissions, signals,
/// socket takeover and refusal, socket activation, logs, configuration layering.
@Suite(.serialized) struct DaemonProcessTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalDrainsNotifiesAndRemovesTheSocket(signal: Int32) async throws {
        let path = uniqueSocketPath("sig\(signal)")
        let daemon = try DaemonProcess(socketPath: path, arguments: ["--loop", "--interval", "0.2"])
        #expect(await daemon.waitUntilListening())
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let watcher = try LineSocket(path: path)
        watcher.setReadTimeout(seconds: 20)
        #expect(
            watcher.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"audit_ready"}}"#)?[
                "result"] != nil)
        // Wait for a loop iteration so that the drain happens with the loop running.
        _ = watcher.readLine()
        kill(daemon.process.processIdentifier, signal)
        let status = await daemon.waitForExit()
        #expect(status == 0)
        await daemon.stop()
        var sawShutdown = false
        while let line = watcher.readLine() {
            if (try? JSONParser.parse(line))?["method"] == "shutdown" { sawShutdown = true }
        }
        #expect(sawShutdown)
        #expect(lstat(path, &info) != 0, "socket file should be removed")
    }

    /// jemalloc, not the C library, serves the daemon's malloc: the link order put it first,
    /// and the daemon says so in its first log line (the README's "Why jemalloc").
    @Test func theDaemonRunsOnJemalloc() async throws {
        let path = uniqueSocketPath("alloc")
        try await withDaemonProcess(path, arguments: ["--log-level", "info"]) { daemon in
            let starting = daemon.stderr.split(separator: "\n").first { $0.contains("daemon.starting") }
            #expect(starting?.contains("allocator=jemalloc 5.") == true, "\(starting ?? "no daemon.starting line")")
        }
    }

    @Test func staleSocketIsReplacedAndASecondDaemonIsRefused() async throws {
        let path = uniqueSocketPath("stale")
        // A stale socket: bound, never listened on, left behind.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        try await withDaemonProcess(path) { _ in
            let client = try await TradewireClient.connect(socketPath: path)
            #expect(try await client.ping())
            await client.close()
            let second = try DaemonProcess(socketPath: path)
            let status = await second.waitForExit()
            #expect(status == 2)
            #expect(second.stderr.contains("already listening"))
        }
        // Anything that is not a socket is never replaced.
        let file = uniqueSocketPath("file")
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep me".utf8)))
        defer { unlink(file) }
        let refused = try DaemonProcess(socketPath: file)
        #expect(await refused.waitForExit() == 2)
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))
    }

    @Test(arguments: [
        ["--max-message-bytes", "70000000"], ["--mode", "turbo"], ["--socket-mode", "777"], ["--log-format", "xml"],
        ["--interval", "0.01"], ["--no-such-flag"], ["--symbols", "bad sym!"], ["--data-provider", "ftp:x"],
        ["--history-capacity", "100000000000"], ["--history-capacity", "9223372036854775807"],
        ["--history-capacity", "0"], ["--max-connections", "0"], ["--max-connections", "99999999"],
        ["--seed=-1"], ["--interval", "1e308"], ["--max-message-bytes", "-5"], ["--publish-rate", "0"],
        ["--publish-rate", "-3"], ["--publish-rate", "nan"], ["--publish-rate", "5/0"], ["--publish-rate", "5/x"],
        ["--publish-rate", "1e10"], ["--publish-rate", "5/2/1"], ["--threads", "0"], ["--threads", "257"],
        ["--threads", "two"],
        ["--socket", "/nonexistent-tradewire-dir/x.sock"], ["--data-provider", "csv:/nonexistent-tradewire-dir"],
    ])
    func usageErrorsExitTwo(arguments: [String]) async throws {
        let daemon = try DaemonProcess(socketPath: uniqueSocketPath("usage"), arguments: arguments)
        #expect(await daemon.waitForExit() == 2)
        #expect(!daemon.stderr.isEmpty)
    }

    @Test func jsonLogsAndThePlainListeningLine() async throws {
        let path = uniqueSocketPath("json")
        try await withDaemonProcess(path, arguments: ["--log-format", "json", "--log-level", "info"]) { daemon in
            let lines = daemon.stderr.split(separator: "\n").map(String.init)
            #expect(lines.contains("listening on \(path)"))
            let logLines = lines.filter { $0 != "listening on \(path)" }
            #expect(!logLines.isEmpty)
            for line in logLines {
                let value = try JSONParser.parse(line)
                #expect(value["message"]?.stringValue != nil && value["level"]?.stringValue != nil)
            }
        }
    }

    @Test func environmentThenFlagsConfigureTheDaemon() async throws {
        let path = uniqueSocketPath("env")
        try await withDaemonProcess(path, environment: ["SYMBOLS": "spy,qqq", "USE_ASYNC_ORCHESTRATOR": "false"]) { _ in
            let client = try await TradewireClient.connect(socketPath: path)
            let run = try await client.call("run_pipeline")
            #expect(run["symbols"] == ["QQQ", "SPY"])
            #expect(try await client.call("get_status")["mode"] == "sync")
            await client.close()
        }
        try await withDaemonProcess(
            path, arguments: ["--symbols", "IWM", "--mode", "async"], environment: ["SYMBOLS": "SPY"]
        ) { _ in
            let client = try await TradewireClient.connect(socketPath: path)
            #expect(try await client.call("run_pipeline")["symbols"] == ["IWM"])
            #expect(try await client.call("get_status")["mode"] == "async")
            await client.close()
        }
    }

    @Test func systemdSocketActivationUsesTheInheritedSocketAndKeepsIt() async throws {
        let path = uniqueSocketPath("sd")
        // A tiny launcher in the role of systemd: bind + listen, put the socket on fd 3, exec.
        let launcher = """
            import os, socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(sys.argv[1]); s.listen(16)
            os.dup2(s.fileno(), 3)
            os.set_inheritable(3, True)
            env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
            os.execve(sys.argv[2], [sys.argv[2], "--log-level", "warning", "--ephemeral"], env)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", launcher, path, DaemonProcess.binary]
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            unlink(path)
        }
        var listening = false
        var text = ""
        let handle = pipe.fileHandleForReading
        let deadline = ContinuousClock.now + .seconds(30)
        while !listening, ContinuousClock.now < deadline, process.isRunning {
            text += String(decoding: handle.availableData, as: UTF8.self)
            listening = text.contains("listening on")
        }
        #expect(listening)
        let client = try await TradewireClient.connect(socketPath: path)
        #expect(try await client.ping())
        #expect(try await client.call("get_status")["socket"] == JSONValue(path))
        await client.close()
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        var info = stat()
        #expect(lstat(path, &info) == 0, "an inherited socket is never unlinked")
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser")))
    func aForeignUIDIsRefusedWithOneErrorLine() async throws {
        let path = uniqueSocketPath("uid")
        try await withDaemonProcess(path) { _ in
            // Let another user reach the socket file (the test only) so that the peer check decides.
            chmod(path, 0o666)
            let probe = """
                import socket, sys
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1]); s.settimeout(10)
                try:
                    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\\n')
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the refusal may close the connection before the request is written
                f = s.makefile("rb")
                sys.stdout.write(f.readline().decode())
                try:
                    rest = f.read()
                except ConnectionResetError:
                    rest = b""
                sys.stdout.write("closed\\n" if rest == b"" else "more: %r\\n" % rest)
                """
            let (status, output) = try runCommand(
                "/usr/sbin/runuser", ["-u", "nobody", "--", "python3", "-c", probe, path])
            #expect(status == 0)
            let lines = output.split(separator: "\n")
            #expect(lines.count == 2 && lines.last == "closed", "runuser said: \(output)")
            let error = try JSONParser.parse(String(lines.first ?? ""))
            #expect(
                error["id"] == .null && error["error"]?["code"] == -32020
                    && error["error"]?["data"]?["type"] == "forbidden")
        }
        try await withDaemonProcess(path, arguments: ["--allow-uid", "65534"]) { _ in
            chmod(path, 0o666)
            let probe = """
                import socket, sys
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\\n'); sys.stdout.write(s.makefile().readline())
                """
            let (_, output) = try runCommand("/usr/sbin/runuser", ["-u", "nobody", "--", "python3", "-c", probe, path])
            #expect(try JSONParser.parse(output)["result"]?["pong"] == true)
        }
    }
}

/// The publish path end to end in the real binary: data is forwarded as compact bytes, on one
/// event-loop thread as on several.
@Suite struct PublishPathProcessTests {
    @Test(arguments: ["1", "2"])
    func dataArrivesCompactAndTheAckComesFirst(threads: String) async throws {
        let path = uniqueSocketPath("pp\(threads)")
        try await withDaemonProcess(path, arguments: ["--threads", threads]) { _ in
            let subscriber = try LineSocket(path: path)
            subscriber.write(
                Array(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"pp.*"}}"#.utf8) + [0x0A])
            let ack = try JSONParser.parse(#require(subscriber.readLine()))
            _ = try #require(ack["result"]?["subscription"]?.stringValue)
            let publisher = try LineSocket(path: path)
            let data = #"{ "a" : [1, 2.50, -3e2] , "s" : "tab\there \"q\" é", "u": "\u00e9" }"#
            publisher.write(
                Array(
                    #"{"jsonrpc":"2.0","id":7,"method":"publish","params":{"event_type":"pp.one","data":\#(data)}}"#
                        .utf8)
                    + [0x0A])
            let receipt = try JSONParser.parse(#require(publisher.readLine()))
            #expect(receipt["id"] == 7)
            #expect(receipt["result"]?["subscribers"] == 1)
            let line = try #require(subscriber.readLine())
            let event = try JSONParser.parse(line)
            #expect(event["params"]?["event"]?["data"] == (try JSONParser.parse(data)))
            // Forwarded compact: the client's spaces are gone, its numbers and escapes kept.
            let text = String(decoding: line, as: UTF8.self)
            #expect(text.contains(#""data":{"a":[1,2.50,-3e2],"s":"tab\there \"q\" é","u":"é"}"#))
        }
    }
}
