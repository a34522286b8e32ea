import Foundation
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Consumers in the journal (PROTOCOL §11, §14): positions, unacknowledged events and dead
/// letters survive `kill -9` and a graceful restart.
@Suite(.serialized) struct ConsumerProcessTests {
    @Test func positionsPendingAndDeadLettersSurviveKillMinusNineAndSigterm() async throws {
        let directory = temporaryDataDirectory("consumers")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("cp")
        let arguments = ["--data-dir", directory]

        let first = try DaemonProcess(socketPath: path, arguments: arguments)
        #expect(await first.waitUntilListening())
        let member = try ConsumerConnection(path)
        _ = try ConsumerTests.subscribe(member, "keeper", "p.*", ["ack_wait_ms": 60_000, "max_in_flight": 100])
        let doomed = try ConsumerConnection(path)
        _ = try ConsumerTests.subscribe(doomed, "doomed", "d.*", ["ack_wait_ms": 100, "max_deliver": 1])
        let seqs = try publish(path, "p.job", count: 10)
        let letterSeq = try #require(try publish(path, "d.job", count: 1).first)
        #expect(member.drain().compactMap(\.deliverySeq) == seqs)
        #expect(
            try member.call("ack", ["consumer": "keeper", "up_to_seq": JSONValue(seqs[3])])["result"]?["acked"] == 4)
        #expect(doomed.nextDelivery()?.deliverySeq == letterSeq)
        try await Task.sleep(for: .milliseconds(600))  // past ack_wait, and past a save
        let letters = try member.call("get_dead_letters")["result"]?["dead_letters"]?.arrayValue ?? []
        #expect(letters.count == 1 && letters.first?["seq"]?.intValue == letterSeq)
        kill(first.process.processIdentifier, SIGKILL)
        _ = await first.waitForExit()

        // After kill -9: the six unacknowledged go out again (attempt 2), then what came since.
        let second = try DaemonProcess(socketPath: path, arguments: arguments)
        #expect(await second.waitUntilListening())
        let later = try publish(path, "p.job", count: 3)
        let again = try ConsumerConnection(path)
        let answer = try ConsumerTests.subscribe(again, "keeper", "p.*")
        #expect(answer["result"]?["consumer"] == "keeper", "\(answer)")
        let redelivered = again.drain()
        #expect(redelivered.compactMap(\.deliverySeq) == Array(seqs.dropFirst(4)) + later)
        #expect(
            redelivered.prefix(6).allSatisfy { $0.attempt == 2 } && redelivered.suffix(3).allSatisfy { $0.attempt == 1 }
        )
        let restored = try again.call("get_dead_letters")["result"]?["dead_letters"]?.arrayValue ?? []
        #expect(restored.count == 1 && restored.first?["seq"]?.intValue == letterSeq)
        #expect(
            restored.first?["event"]?["event_type"] == "d.job", "the dead letter's event is read back from the journal")
        #expect(
            try again.call("ack", ["consumer": "keeper", "up_to_seq": JSONValue(later.last!)])["result"]?["acked"] == 9)
        #expect(await second.stop() == 0)

        // After a graceful stop: nothing pending, the position where it was.
        let third = try DaemonProcess(socketPath: path, arguments: arguments)
        #expect(await third.waitUntilListening())
        let reader = try ConsumerConnection(path)
        let consumers = try reader.call("get_consumers")["result"]?["consumers"]?.arrayValue ?? []
        let keeper = try #require(consumers.first { $0["consumer"] == "keeper" })
        #expect(keeper["pending"] == 0 && keeper["position"]?.intValue == later.last && keeper["members"] == 0)
        #expect(keeper["max_in_flight"] == 100 && keeper["ack_wait_ms"] == 60_000, "the settings are kept")
        _ = try ConsumerTests.subscribe(reader, "keeper", "p.*")
        #expect(reader.nextDelivery(within: 500) == nil, "nothing acknowledged comes back")
        #expect(await third.stop() == 0)
    }
}
