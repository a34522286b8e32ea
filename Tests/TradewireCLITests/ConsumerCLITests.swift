import Foundation
import Testing
import TradewireJSON

#if canImport(Glibc)
    import Glibc
#endif

/// End-to-end: `tradewire consume`, `tradewire consumers` and `tradewire dlq` against a real
/// `tradewired` per test (PROTOCOL §11).
@Suite(.serialized)
struct ConsumerCLITests {
    private func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A scratch directory for the commands' files, removed by `body`'s end.
    private func withScratch(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("twcons-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    private func publish(_ daemon: TestDaemon, _ type: String, _ data: String) async throws -> Int {
        let result = try await daemon.tradewire(["publish", type, data, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try json(result.stdout)["seq"]?.intValue)
    }

    private func consumer(_ daemon: TestDaemon, _ name: String) async throws -> JSONValue? {
        let result = try await daemon.tradewire(["consumers", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try json(result.stdout)["consumers"]?.arrayValue?.first { $0["consumer"]?.stringValue == name }
    }

    private func deadLetters(_ daemon: TestDaemon, _ name: String) async throws -> [JSONValue] {
        let result = try await daemon.tradewire(["dlq", "list", "--consumer", name, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try json(result.stdout)["dead_letters"]?.arrayValue ?? []
    }

    /// Polls `body` until it returns true (fails after 10 s).
    private func eventually(_ what: String, _ body: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try await !body() {
            guard ContinuousClock.now < deadline else { throw SubprocessError(description: "timed out: \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test func consumePrintsAndAcknowledges() async throws {
        try await withDaemon { daemon in
            let member = try daemon.start(["consume", "printer", "cli.cons.*", "--json", "--count", "2"])
            defer { member.terminateNow() }
            try await member.waitForStderr("consuming cli.cons.* as printer")
            let first = try await publish(daemon, "cli.cons.a", #"{"n":1}"#)
            _ = try await publish(daemon, "cli.other", "0")
            let second = try await publish(daemon, "cli.cons.b", #"{"n":2}"#)
            let result = try await member.finish(timeout: .seconds(15))
            #expect(result.status == 0, "\(result.stderr)")
            let events = try result.lines.map { try json($0) }
            #expect(events.map { $0["seq"]?.intValue } == [first, second])
            #expect(events.map { $0["data"] } == [["n": 1], ["n": 2]])

            // Both acknowledged: nothing pending, no member left.
            let row = try #require(try await consumer(daemon, "printer"))
            #expect(row["pattern"] == "cli.cons.*")
            #expect(row["pending"] == 0)
            #expect(row["members"] == 0)
            #expect((row["position"]?.intValue ?? 0) >= second)

            let table = try await daemon.tradewire(["consumers"])
            #expect(table.status == 0)
            #expect(table.lines.first?.hasPrefix("CONSUMER") == true)
            #expect(table.lines.contains { $0.hasPrefix("printer ") && $0.contains("cli.cons.*") })

            // Human lines as subscribe prints them: SEQ TIME TYPE DATA.
            let again = try daemon.start(["consume", "printer", "cli.cons.*", "--count", "1"])
            defer { again.terminateNow() }
            try await again.waitForStderr("consuming")
            let third = try await publish(daemon, "cli.cons.c", #"{"n":3}"#)
            let human = try await again.finish(timeout: .seconds(15))
            #expect(human.status == 0, "\(human.stderr)")
            #expect(human.lines.count == 1)
            #expect(human.lines.first?.hasPrefix("\(third) ") == true)
            #expect(human.lines.first?.hasSuffix(#"cli.cons.c {"n":3}"#) == true)
        }
    }

    @Test func execAcknowledgesOnExitZeroAndRefusesOtherwise() async throws {
        try await withScratch { scratch in
            try await withDaemon { daemon in
                let log = scratch.appendingPathComponent("log").path
                let events = scratch.appendingPathComponent("events").path
                // Fails the first attempt (exit 3, "boom" on stderr), succeeds the second.
                let command =
                    "echo \"$TW_EVENT_SEQ $TW_EVENT_TYPE $TW_DELIVERY_ATTEMPT $TW_CONSUMER\" >> '\(log)'; "
                    + "cat >> '\(events)'; echo \"handled $TW_EVENT_SEQ\"; "
                    + "[ \"$TW_DELIVERY_ATTEMPT\" -ge 2 ] || { echo boom >&2; exit 3; }"
                let member = try daemon.start([
                    "consume", "runner", "cli.exec", "--exec", command, "--nak-delay", "100", "--count", "1",
                ])
                defer { member.terminateNow() }
                try await member.waitForStderr("consuming")
                let seq = try await publish(daemon, "cli.exec", #"{"job":42}"#)
                let result = try await member.finish(timeout: .seconds(15))
                #expect(result.status == 0, "\(result.stderr)")
                #expect(
                    try String(contentsOfFile: log, encoding: .utf8)
                        == "\(seq) cli.exec 1 runner\n\(seq) cli.exec 2 runner\n")
                // The event object on stdin, each time.
                let received = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n")
                #expect(received.count == 2)
                for line in received {
                    let event = try json(String(line))
                    #expect(event["seq"]?.intValue == seq && event["data"] == ["job": 42])
                }
                // Its stdout passed through; its stderr prefixed; the refusal explained.
                #expect(result.lines == ["handled \(seq)", "handled \(seq)"])
                #expect(result.stderr.contains("[seq \(seq)] boom"))
                #expect(result.stderr.contains("not acknowledged: command exited 3: boom"))
                let row = try #require(try await consumer(daemon, "runner"))
                #expect(row["pending"] == 0)
                #expect(try await deadLetters(daemon, "runner").isEmpty)
            }
        }
    }

    @Test func deadLettersListRetryAndDiscard() async throws {
        try await withDaemon { daemon in
            let failing = try daemon.start([
                "consume", "doomed", "cli.dlq", "--exec", "echo nope >&2; exit 1", "--max-deliver", "2",
            ])
            defer { failing.terminateNow() }
            try await failing.waitForStderr("consuming")
            let first = try await publish(daemon, "cli.dlq", #"{"k":1}"#)
            let second = try await publish(daemon, "cli.dlq", #"{"k":2}"#)
            var letters: [JSONValue] = []
            try await eventually("two dead letters") {
                letters = try await deadLetters(daemon, "doomed")
                return letters.count == 2
            }
            let stopped = try await failing.terminate(timeout: .seconds(10))
            #expect(stopped.status == 0, "\(stopped.stderr)")
            #expect(Set(letters.compactMap { $0["seq"]?.intValue }) == [first, second])
            for letter in letters {
                #expect(letter["attempts"] == 2)
                #expect(letter["event_type"] == "cli.dlq")
                #expect(letter["last_error"]?.stringValue?.contains("command exited 1: nope") == true)
            }
            let byID = Dictionary(uniqueKeysWithValues: letters.map { ($0["seq"]?.intValue ?? 0, $0["id"] ?? .null) })
            let retryID = idText(try #require(byID[first]))
            let discardID = idText(try #require(byID[second]))

            let table = try await daemon.tradewire(["dlq", "list"])
            #expect(table.status == 0)
            #expect(table.lines.first?.contains("CONSUMER") == true)
            #expect(table.lines.count == 3)
            #expect(table.stdout.contains("command exited 1: nope"))

            let retried = try await daemon.tradewire(["dlq", "retry", retryID])
            #expect(retried.status == 0, "\(retried.stderr)")
            #expect(retried.stdout.contains("goes back to its consumer"))
            // Delivered again (attempt 1) to a member that succeeds.
            let fixed = try daemon.start(["consume", "doomed", "cli.dlq", "--json", "--count", "1"])
            defer { fixed.terminateNow() }
            let result = try await fixed.finish(timeout: .seconds(15))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try result.lines.map { try json($0)["seq"]?.intValue } == [first])

            let again = try await daemon.tradewire(["dlq", "retry", retryID])
            #expect(again.status == 1)
            #expect(again.stderr.contains("dead_letter_not_found"))

            let discarded = try await daemon.tradewire(["dlq", "discard", discardID])
            #expect(discarded.status == 0, "\(discarded.stderr)")
            #expect(discarded.stdout == "discarded dead letter \(discardID)\n")
            let nothing = try await daemon.tradewire(["dlq", "discard", discardID])
            #expect(nothing.stdout == "no dead letter \(discardID)\n")
            #expect(try await deadLetters(daemon, "doomed").isEmpty)
            #expect(try await daemon.tradewire(["dlq", "list"]).stdout == "no dead letters\n")
        }
    }

    @Test func sigtermStopsARunningCommandAndRefusesItsEvent() async throws {
        try await withScratch { scratch in
            try await withDaemon { daemon in
                let pidFile = scratch.appendingPathComponent("pid").path
                let member = try daemon.start([
                    "consume", "slow", "cli.slow", "--exec", "echo $$ > '\(pidFile)'; exec sleep 30",
                ])
                defer { member.terminateNow() }
                try await member.waitForStderr("consuming")
                _ = try await publish(daemon, "cli.slow", "1")
                try await eventually("the command to start") {
                    FileManager.default.fileExists(atPath: pidFile)
                        && !((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").isEmpty
                }
                let text = try String(contentsOfFile: pidFile, encoding: .utf8)
                let pid = try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
                let result = try await member.terminate(timeout: .seconds(10))
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stderr.contains("not acknowledged: consume stopped"))
                try await eventually("the command to be gone") { kill(pid, 0) == -1 && errno == ESRCH }
                let row = try #require(try await consumer(daemon, "slow"))
                #expect(row["members"] == 0)
            }
        }
    }

    @Test func consumersDelete() async throws {
        try await withDaemon { daemon in
            let member = try daemon.start(["consume", "brief", "cli.del", "--count", "1"])
            defer { member.terminateNow() }
            try await member.waitForStderr("consuming")
            _ = try await publish(daemon, "cli.del", "1")
            #expect(try await member.finish(timeout: .seconds(15)).status == 0)
            let deleted = try await daemon.tradewire(["consumers", "delete", "brief"])
            #expect(deleted.status == 0, "\(deleted.stderr)")
            #expect(deleted.stdout == "deleted consumer brief\n")
            #expect(try await consumer(daemon, "brief") == nil)
            #expect(try await daemon.tradewire(["consumers", "delete", "brief"]).stdout == "no consumer brief\n")
            #expect(try await daemon.tradewire(["consumers"]).stdout == "no consumers\n")
        }
    }

    @Test func consumeUsageErrorsExit2() async throws {
        try await withDaemon { daemon in
            for arguments in [
                ["consume", "bad name!", "x"], ["consume", "ok", "bad pattern!"],
                ["consume", "ok", "x", "--nak-delay", "5"],
                ["consume", "ok", "x", "--max-deliver", "0"], ["dlq", "list", "--limit", "0"],
            ] {
                let result = try await daemon.tradewire(arguments)
                #expect(result.status == 2, "\(arguments): \(result.stderr)")
            }
            // A second pattern for an existing consumer is the daemon's refusal: exit 1.
            let member = try daemon.start(["consume", "fixed", "cli.one", "--count", "1"])
            defer { member.terminateNow() }
            try await member.waitForStderr("consuming")
            let other = try await daemon.tradewire(["consume", "fixed", "cli.two"])
            #expect(other.status == 1, "\(other.stderr)")
            #expect(other.stderr.contains("-32602"))
        }
    }
}

/// A dead letter id as `dlq` takes it on its command line.
private func idText(_ id: JSONValue) -> String {
    id.stringValue ?? id.intValue.map(String.init) ?? JSONWriter.string(id)
}
