import Foundation
import Synchronization
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh data directory under /tmp, removed by the caller.
func temporaryDataDirectory(_ tag: String) -> String {
    "/tmp/twj-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max))"
}

/// The daemon with a journal (PROTOCOL §10, as far as it has landed): seq and history
/// survive restarts and `kill -9`, one daemon per data dir.
@Suite(.serialized) struct JournalProcessTests {
    @Test func seqAndHistoryContinueAcrossARestart() async throws {
        let directory = temporaryDataDirectory("restart")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("jr")
        var firstJournalID: JSONValue?
        var firstInstance: JSONValue?
        var timestamps: [JSONValue] = []
        try await withDaemonProcess(path, arguments: ["--data-dir", directory, "--history-capacity", "2"]) { _ in
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            for i in 1...5 {
                let answer = await client.request("publish", ["event_type": "note", "data": JSONValue(i)])
                #expect(answer?["result"]?["seq"] == JSONValue(i))
                timestamps.append(answer?["result"]?["timestamp"] ?? .null)
            }
            let status = await client.request("get_status")?["result"]
            #expect(status?["journal"]?["events"] == 5 && status?["journal"]?["fsync"] == "normal")
            #expect(status?["journal"]?["path"] == JSONValue(directory + "/tradewire.db"))
            firstJournalID = status?["journal"]?["journal_id"]
            firstInstance = status?["instance_id"]
        }
        var info = stat()
        #expect(lstat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
        try await withDaemonProcess(path, arguments: ["--data-dir", directory, "--history-capacity", "2"]) { _ in
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            let next = await client.request("publish", ["event_type": "note", "data": 6])
            #expect(next?["result"]?["seq"] == 6, "seq continues after a restart")
            // The ring holds 2 events; history comes from the journal.
            let history = await client.request("get_event_history", ["event_type": "note"])?["result"]
            let events = history?["events"]?.arrayValue ?? []
            #expect(events.map { $0["seq"] } == [1, 2, 3, 4, 5, 6])
            #expect(events.map { $0["data"] } == [1, 2, 3, 4, 5, 6])
            #expect(Array(events.prefix(5)).map { $0["timestamp"] ?? .null } == timestamps, "records keep their times")
            #expect(history?["oldest_seq"] == 1 && history?["newest_seq"] == 6)
            let last2 = await client.request("get_event_history", ["limit": 2, "include_data": false])?["result"]
            #expect(last2?["events"]?.arrayValue?.map { $0["seq"] } == [5, 6])
            #expect(last2?["events"]?.arrayValue?.first?["data"] == nil)
            let status = await client.request("get_status")?["result"]
            #expect(status?["journal"]?["journal_id"] == firstJournalID, "the same data dir keeps its journal id")
            #expect(status?["instance_id"] != firstInstance, "a new instance id at every start")
        }
    }

    @Test func retentionKeepsTheNewestEventsAndSeqGoesOn() async throws {
        let directory = temporaryDataDirectory("retain")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("jt")
        try await withDaemonProcess(path, arguments: ["--data-dir", directory, "--retain-events", "5"]) { _ in
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            for i in 1...20 { _ = await client.request("publish", ["event_type": "r", "data": JSONValue(i)]) }
            try await waitUntil {
                await client.request("get_event_history", [:])?["result"]?["oldest_seq"] == 16
            }
            let history = await client.request("get_event_history", [:])?["result"]
            #expect(history?["events"]?.arrayValue?.map { $0["seq"] } == [16, 17, 18, 19, 20])
            #expect(history?["capacity"] == 5 && history?["newest_seq"] == 20)
            let status = await client.request("get_status")?["result"]
            #expect(status?["journal"]?["events"] == 5 && status?["journal"]?["oldest_seq"] == 16)
        }
        // Seq goes on after the pruned prefix.
        try await withDaemonProcess(path, arguments: ["--data-dir", directory, "--retain-events", "5"]) { _ in
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            #expect(await client.request("publish", ["event_type": "r"])?["result"]?["seq"] == 21)
        }
        for bad in [["--retain-events", "0"], ["--retain-days", "0"], ["--retain-events", "x"]] {
            let daemon = try DaemonProcess(socketPath: uniqueSocketPath("jtb"), arguments: bad)
            #expect(await daemon.waitForExit() == 2)
            await daemon.stop()
        }
    }

    @Test func subscribeSinceSeqReplaysFromTheJournalThenGoesLive() async throws {
        let directory = temporaryDataDirectory("replay")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("jy")
        try await withDaemonProcess(path, arguments: ["--data-dir", directory, "--history-capacity", "3"]) { _ in
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            for i in 1...10 {
                _ = await client.request("publish", ["event_type": i % 2 == 0 ? "even" : "odd", "data": JSONValue(i)])
            }
            // The ring holds 3 events; seqs 1...7 come from the journal.
            let watcher = try LineSocket(path: path)
            watcher.setReadTimeout(seconds: 10)
            let ack = watcher.roundTrip(
                #"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"*","since_seq":2}}"#)
            #expect(ack?["result"]?["subscription"] != nil)
            _ = await client.request("publish", ["event_type": "live", "data": 11])
            var seen: [JSONValue] = []
            while seen.count < 9, let line = watcher.readLine() {
                let message = try JSONParser.parse(line)
                #expect(message["method"] == "event", "\(message)")
                seen.append(message["params"]?["event"]?["seq"] ?? .null)
            }
            #expect(seen == [3, 4, 5, 6, 7, 8, 9, 10, 11], "journal, then ring, then live: no gap, no repeat")
            // A pattern filters the journal's part too.
            let evens = try LineSocket(path: path)
            evens.setReadTimeout(seconds: 10)
            _ = evens.roundTrip(
                #"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"even","since_seq":0}}"#)
            var evenSeen: [JSONValue] = []
            while evenSeen.count < 5, let line = evens.readLine() {
                evenSeen.append((try JSONParser.parse(line))["params"]?["event"]?["data"] ?? .null)
            }
            #expect(evenSeen == [2, 4, 6, 8, 10])
        }
    }

    @Test func aSecondDaemonOnTheSameDataDirExitsTwo() async throws {
        let directory = temporaryDataDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withDaemonProcess(uniqueSocketPath("jl1"), arguments: ["--data-dir", directory]) { _ in
            let second = try DaemonProcess(socketPath: uniqueSocketPath("jl2"), arguments: ["--data-dir", directory])
            let status = await second.waitForExit()
            #expect(status == 2)
            #expect(second.stderr.contains("--data-dir") && second.stderr.contains("--ephemeral"), "\(second.stderr)")
            await second.stop()
        }
        let both = try DaemonProcess(
            socketPath: uniqueSocketPath("jl3"), arguments: ["--data-dir", directory, "--ephemeral"])
        #expect(await both.waitForExit() == 2)
        await both.stop()
    }

    @Test func killMinusNineLosesNoAcknowledgedPublish() async throws {
        let directory = temporaryDataDirectory("kill")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("jk")
        let acknowledged = Mutex<[Int: Int]>([:])  // seq → data
        for round in 0..<3 {
            let daemon = try DaemonProcess(socketPath: path, arguments: ["--data-dir", directory])
            #expect(await daemon.waitUntilListening())
            // Two publishers race the kill.
            let publishers = (0..<2).map { p in
                Thread {
                    guard let socket = try? LineSocket(path: path) else { return }
                    socket.setReadTimeout(seconds: 5)
                    for i in 0..<100_000 {
                        let value = round * 1_000_000 + p * 100_000 + i
                        guard
                            let answer = socket.roundTrip(
                                #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"t","data":\#(value)}}"#
                            ), let seq = answer["result"]?["seq"]?.intValue
                        else { return }
                        acknowledged.withLock { $0[seq] = value }
                    }
                }
            }
            publishers.forEach { $0.start() }
            try await Task.sleep(for: .milliseconds(Int.random(in: 150...400)))
            kill(daemon.process.processIdentifier, SIGKILL)
            _ = await daemon.waitForExit()
            while publishers.contains(where: \.isExecuting) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(acknowledged.withLock { $0.count } > 0)
        }
        try await withDaemonProcess(path, arguments: ["--data-dir", directory]) { _ in
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            let history = await client.request("get_event_history", ["event_type": "t"])?["result"]
            var stored: [Int: JSONValue] = [:]
            for event in history?["events"]?.arrayValue ?? [] {
                if let seq = event["seq"]?.intValue { stored[seq] = event["data"] }
            }
            let acked = acknowledged.withLock { $0 }
            let missing = acked.filter { stored[$0.key] != JSONValue($0.value) }
            #expect(missing.isEmpty, "\(missing.count) of \(acked.count) acknowledged publishes were lost or changed")
            let seqs = (history?["events"]?.arrayValue ?? []).compactMap { $0["seq"]?.intValue }
            #expect(seqs == Array(1...(seqs.last ?? 0)), "no gap and no repeat in the journal's seqs")
            let next = await client.request("publish", ["event_type": "t", "data": 0])?["result"]?["seq"]?.intValue
            #expect(next == (seqs.last ?? 0) + 1)
        }
    }
}
