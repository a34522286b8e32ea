import Foundation
import Synchronization
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Dice shared by the chaos members (a seeded generator behind a lock).
final class Dice: Sendable {
    private let generator: Mutex<SeededGenerator>
    init(seed: UInt64) { generator = Mutex(SeededGenerator(seed: seed)) }
    func roll(_ range: Range<Int>) -> Int { generator.withLock { Int.random(in: range, using: &$0) } }
    func pause(upTo seconds: Double) -> Double { generator.withLock { Double.random(in: 0...seconds, using: &$0) } }
}

/// The daemon's resident set in KiB (from /proc).
func residentKiB(of pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

/// Members that hang, crash, answer badly, disconnect mid-call and come back, against a
/// real daemon process, for `TW_CHAOS_ITERATIONS` iterations (100 by default).
@Suite(.serialized) struct StageChaosTests {
    static let seed = ProcessInfo.processInfo.environment["TW_CHAOS_SEED"].flatMap { UInt64($0) } ?? 42
    static let iterations = max(
        1, ProcessInfo.processInfo.environment["TW_CHAOS_ITERATIONS"].flatMap { Int($0) } ?? 100)

    /// What a chaotic member does with a call.
    static func chaoticAnswer(_ params: JSONValue, _ dice: Dice) -> ScriptedMember.Action {
        let roll = dice.roll(0..<100)
        let output = params["output"] ?? .null
        switch roll {
        case 0..<50: return .reply(output)
        case 50..<58: return .ignore  // hangs past its timeout
        case 58..<66: return .disconnect  // crashes mid-call
        case 66..<72: return .reply(["not": "the stage's shape"])
        case 72..<76: return .raw(Array("{this is not json".utf8))
        case 76..<82: return .error("the handler raised")
        case 82..<88: return .replyLater(seconds: 0.4, output)  // late
        default: return .reply(.array([]))  // drops every signal (risk ignores it)
        }
    }

    @Test func everyIterationEndsWithOneAuditAndRiskNeverApprovesUnguarded() async throws {
        let path = uniqueSocketPath("chaos")
        try await withDaemonProcess(path, arguments: ["--seed", "42", "--history-capacity", "200"]) { daemon in
            let pid = daemon.process.processIdentifier
            let dice = Dice(seed: Self.seed)
            let watcher = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            let client = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            // Audits seen per iteration id.
            let audits = Mutex<[String: Int]>([:])
            let subscriber = try LineSocket(path: path)
            subscriber.setReadTimeout(seconds: 600)
            subscriber.write(
                Array(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"audit_ready"}}"#.utf8)
                    + [10])
            Thread.detachNewThread {
                while let line = subscriber.readLine() {
                    guard let message = try? JSONParser.parse(line), message["method"] == "event",
                        let id = message["params"]?["event"]?["metadata"]?["iteration_id"]?.stringValue
                    else { continue }
                    audits.withLock { $0[id, default: 0] += 1 }
                }
            }

            // Groups: a durable risk group (fails closed) and a quant group (skips).
            let groups: [JSONValue] = [
                ["stage": "risk", "name": "chaos-guard", "durable": true, "timeout_ms": 250, "concurrency": 2],
                ["stage": "quant", "name": "chaos-quant", "timeout_ms": 250],
            ]
            let members = Mutex<[ScriptedMember]>([])
            let stop = Atomic<Bool>(false)
            @Sendable func join(_ group: JSONValue) -> ScriptedMember? {
                guard let socket = try? LineSocket(path: path) else { return nil }
                let member = ScriptedMember(socket: socket) { StageChaosTests.chaoticAnswer($0, dice) }
                guard member.call("register_stage", group, timeout: 10)?["result"] != nil else { return nil }
                return member
            }
            // The supervisor brings crashed members back after a pause (so that the durable
            // group is sometimes without a member).
            let supervisor = Thread {
                var slots: [(JSONValue, ScriptedMember?)] = groups.flatMap { [($0, nil), ($0, nil)] }
                while !stop.load(ordering: .relaxed) {
                    for i in slots.indices where slots[i].1?.isClosed ?? true {
                        let pause = dice.pause(upTo: 0.3)
                        Thread.sleep(forTimeInterval: pause)
                        slots[i].1 = join(slots[i].0)
                        if let member = slots[i].1 { members.withLock { $0.append(member) } }
                    }
                    Thread.sleep(forTimeInterval: 0.02)
                }
                for slot in slots { slot.1?.close() }
            }
            supervisor.start()
            // Start once the durable risk group exists (before it, nothing guards risk).
            try await waitUntil {
                await client.request("get_status")?["result"]?["stages"]?["risk"]?.arrayValue?.isEmpty == false
            }

            var rssAfterWarmup: Int?
            var iterationIDs: [String] = []
            var unguardedApprovals = 0
            var riskFailures = 0
            var riskCalls = 0
            for index in 1...Self.iterations {
                let started = ContinuousClock.now
                let response = try #require(
                    await client.request(
                        "run_pipeline",
                        ["symbols": stageSymbols, "strategy": "TrendFollowing", "timeout_ms": 5000, "dry_run": true]))
                let elapsed = ContinuousClock.now - started
                #expect(elapsed < .milliseconds(5500), "iteration \(index) took \(elapsed)")
                let result = try #require(response["result"], "iteration \(index): \(response)")
                let id = try #require(result["iteration_id"]?.stringValue)
                iterationIDs.append(id)
                let risk = (result["handlers"]?.arrayValue ?? []).filter { $0["stage"] == "risk" }
                riskCalls += risk.count
                let riskOK = risk.count == 1 && risk[0]["outcome"] == "ok"
                // Risk is not called when quant left no signal; otherwise it must have answered.
                let validated = result["validated_signals"]?.arrayValue ?? []
                if !riskOK && !validated.isEmpty {
                    riskFailures += 1
                    if !trades(result).isEmpty { unguardedApprovals += 1 }
                }
                if index == min(20, Self.iterations) { rssAfterWarmup = residentKiB(of: pid) }
            }
            stop.store(true, ordering: .relaxed)
            while supervisor.isExecuting { try await Task.sleep(for: .milliseconds(20)) }

            #expect(unguardedApprovals == 0, "risk approved while its group failed or had no member")
            #expect(riskFailures > 0, "the chaos never made risk fail (the test proved nothing)")
            try await waitUntil { audits.withLock { a in iterationIDs.allSatisfy { a[$0] != nil } } }
            let counts = audits.withLock { a in iterationIDs.map { a[$0] ?? 0 } }
            #expect(counts.allSatisfy { $0 == 1 }, "one audit_ready per iteration")
            // Every call finished: nothing in flight once the members are gone.
            try await waitUntil {
                guard let stages = await client.request("get_status")?["result"]?["stages"]?.objectValue else {
                    return false
                }
                return stages.members.allSatisfy { stage in
                    (stage.value.arrayValue ?? []).allSatisfy { $0["in_flight"] == 0 }
                }
            }
            let status = await client.request("get_status")
            let guardGroup = status?["result"]?["stages"]?["risk"]?.arrayValue?.first
            #expect(guardGroup?["calls"]?.intValue == riskCalls, "every risk call counted once")
            #expect(riskCalls > Self.iterations / 2)
            #expect((guardGroup?["timeouts"]?.intValue ?? 0) > 0)
            if let before = rssAfterWarmup, let after = residentKiB(of: pid) {
                // Flat: bounded growth over the run (history is capped at 200 events).
                #expect(after - before < 16 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
            }
            #expect(daemon.process.isRunning)
            watcher.close()
            client.close()
            members.withLock { $0.forEach { $0.close() } }
        }
    }
}
