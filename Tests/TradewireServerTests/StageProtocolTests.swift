import Foundation
import Synchronization
import Testing
import TradewireJSON
import TradewirePipeline
import TradewireServer
import TradewireTesting

/// How a test reaches the daemon: its socket path, or the in-process transport.
enum Transport: String, CaseIterable, Sendable {
    case socket, inProcess

    func connect(_ path: String, _ daemon: Daemon) async throws -> LineSocket {
        switch self {
        case .socket: try LineSocket(path: path)
        case .inProcess: try await InProcessTransport.connect(to: daemon)
        }
    }

    /// A scripted member (or, answering nothing, a plain client).
    func member(
        _ path: String, _ daemon: Daemon,
        answer: @escaping @Sendable (JSONValue) -> ScriptedMember.Action = { _ in
            .ignore
        }
    ) async throws -> ScriptedMember {
        ScriptedMember(socket: try await connect(path, daemon), answer: answer)
    }
}

let stageSymbols: JSONValue = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]

extension ScriptedMember {
    /// A blocking call run off the cooperative pool.
    func request(_ method: String, _ params: JSONValue = [:], timeout: Double = 60) async -> JSONValue? {
        await onThread { self.call(method, params, timeout: timeout) }
    }

    func register(_ params: JSONValue) async throws -> JSONValue {
        let response = try #require(await request("register_stage", params))
        return response
    }

    /// One iteration over the test symbols (TrendFollowing approves some BUYs on seed 42).
    func runPipeline(_ extra: JSONObject = [:]) async throws -> JSONValue {
        var params: JSONObject = ["symbols": stageSymbols, "strategy": "TrendFollowing"]
        for member in extra { params[member.key] = member.value }
        let response = try #require(await request("run_pipeline", .object(params)))
        return try #require(response["result"], "\(response)")
    }
}

/// The output with every approved BUY/SELL rejected.
func vetoAll(_ params: JSONValue, reason: String = "vetoed") -> JSONValue {
    .array(
        (params["output"]?.arrayValue ?? []).map { signal in
            guard case .object(var s) = signal, s["action"] != "HOLD" else { return signal }
            s["approved"] = false
            s["rejection_reason"] = JSONValue(reason)
            return .object(s)
        })
}

func trades(_ result: JSONValue, _ key: String = "approved_signals") -> [JSONValue] {
    (result[key]?.arrayValue ?? []).filter { $0["action"] != "HOLD" }
}

func outcomes(_ result: JSONValue) -> [String] {
    (result["handlers"]?.arrayValue ?? []).compactMap { $0["outcome"]?.stringValue }
}

func stageGroup(_ client: ScriptedMember, _ stage: String, _ name: String) async -> JSONValue? {
    let status = await client.request("get_status")
    return status?["result"]?["stages"]?[stage]?.arrayValue?.first { $0["name"] == JSONValue(name) }
}

@Suite(.serialized) struct StageProtocolTests {
    @Test(arguments: Transport.allCases)
    func aRiskMemberVetoesBeforeAnythingExecutes(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let client = try await transport.member(path, daemon)
            let baseline = try await client.runPipeline(["dry_run": true])
            try #require(!trades(baseline).isEmpty, "the fixture approves trades without handlers")
            let member = try await transport.member(path, daemon) { .reply(vetoAll($0)) }
            let registered = try await member.register(["stage": "risk", "name": "veto"])
            #expect(registered["result"]?["registration"]?.stringValue?.hasPrefix("r-") == true)
            #expect(registered["result"]?["on_failure"] == "fail_closed")
            #expect(registered["result"]?["mode"] == "after" && registered["result"]?["members"] == 1)
            let result = try await client.runPipeline()
            #expect(trades(result).isEmpty)
            #expect(result["execution_results"]?.arrayValue?.isEmpty == true)
            #expect(trades(result, "rejected_signals").contains { $0["rejection_reason"] == "vetoed" })
            #expect(outcomes(result) == ["ok"])
            let call = try #require(member.calls.first)
            #expect(call["stage"] == "risk" && call["name"] == "veto" && call["mode"] == "after")
            #expect(call["iteration_id"] == result["iteration_id"])
            #expect(call["account"]?["risk_budget"]?["limit"]?.doubleValue ?? 0 > 0)
            let inputCount = call["input"]?["signals"]?.arrayValue?.count
            #expect(inputCount != nil && inputCount == call["output"]?.arrayValue?.count)
            #expect(call["deadline"]?.stringValue?.hasSuffix("Z") == true)
            let group = try #require(await stageGroup(client, "risk", "veto"))
            #expect(group["calls"] == 1 && group["failures"] == 0 && group["in_flight"] == 0 && group["members"] == 1)
            #expect(group["p50_ms"]?.doubleValue != nil)
            // Closing the member removes the (non-durable) group.
            member.close()
            try await waitUntil { await stageGroup(client, "risk", "veto") == nil }
        }
    }

    @Test(arguments: Transport.allCases)
    func registrationRulesAreEnforced(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let a = try await transport.member(path, daemon)
            let b = try await transport.member(path, daemon)
            func code(_ m: ScriptedMember, _ params: JSONValue) async -> Int? {
                await m.request("register_stage", params)?.errorCode
            }
            #expect(await code(a, ["stage": "risk", "name": "r", "mode": "replace"]) == -32602)
            #expect(await code(a, ["stage": "quant", "name": "q", "on_failure": "fallback"]) == -32602)
            #expect(await code(a, ["stage": "audit", "name": "x"]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": ""]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": "has space"]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": JSONValue(String(repeating: "n", count: 65))]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": "r", "concurrency": 0]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": "r", "concurrency": 1025]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": "r", "timeout_ms": 300_001]) == -32602)
            #expect(await code(a, ["stage": "risk", "name": "r", "bogus": 1]) == -32602)
            #expect(await code(a, ["stage": "strategy", "name": "s1", "mode": "replace"]) == nil)
            let conflict = await b.request("register_stage", ["stage": "strategy", "name": "s2", "mode": "replace"])
            #expect(conflict?.errorCode == -32030 && conflict?.errorType == "stage_conflict")
            #expect(await code(a, ["stage": "risk", "name": "g", "timeout_ms": 700]) == nil)
            #expect(await code(b, ["stage": "risk", "name": "g", "timeout_ms": 800]) == -32602)
            let joined = await b.request("register_stage", ["stage": "risk", "name": "g"])
            #expect(joined?["result"]?["timeout_ms"] == 700 && joined?["result"]?["members"] == 2)
            #expect(await code(b, ["stage": "risk", "name": "g"]) == -32602, "already a member")
            let registration = try #require(joined?["result"]?["registration"])
            #expect(await a.request("unregister_stage", ["registration": registration])?["result"] == ["removed": 0])
            #expect(await b.request("unregister_stage", ["registration": registration])?["result"] == ["removed": 1])
            #expect(await a.request("unregister_stage", ["stage": "risk"])?.errorCode == -32602)
            #expect(
                await b.request("unregister_stage", ["stage": "strategy", "name": "s1"])?["result"] == ["removed": 1])
            // A stage's groups are bounded (each after group is called in every iteration).
            for i in 1...64 { #expect(await code(a, ["stage": "quant", "name": JSONValue("q\(i)")]) == nil) }
            let tooMany = await a.request("register_stage", ["stage": "quant", "name": "q65"])
            #expect(tooMany?.errorCode == -32602)
            #expect(tooMany?["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/stage")
        }
    }

    @Test(arguments: Transport.allCases)
    func aTimeoutCancelsTheCallCountsTheLateReplyAndFailsClosed(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let client = try await transport.member(path, daemon)
            let member = try await transport.member(path, daemon) { params in
                .replyLater(seconds: 0.6, params["output"] ?? .null)
            }
            _ = try await member.register(["stage": "risk", "name": "slow", "timeout_ms": 200])
            let result = try await client.runPipeline()
            #expect(outcomes(result) == ["timeout"])
            #expect(trades(result).isEmpty)
            #expect(
                trades(result, "rejected_signals").allSatisfy {
                    $0["rejection_reason"] == "risk handler slow failed: timeout"
                })
            #expect(await onThread { member.waitForCancels(1, timeout: 5) })
            let callID = member.cancels.first
            #expect(callID?.hasPrefix("c-") == true)
            try await waitUntil { await stageGroup(client, "risk", "slow")?["late_replies"] == 1 }
            let group = try #require(await stageGroup(client, "risk", "slow"))
            #expect(group["timeouts"] == 1 && group["failures"] == 1 && group["in_flight"] == 0)
            let failed = await client.request("get_event_history", ["event_type": "stage_failed"])
            let event = try #require(failed?["result"]?["events"]?.arrayValue?.last)
            #expect(event["data"]?["reason"] == "timeout" && event["data"]?["policy"] == "fail_closed")
            #expect(event["data"]?["iteration_id"] == result["iteration_id"])
            #expect(event["metadata"]?["iteration_id"] == result["iteration_id"])
        }
    }

    @Test(arguments: Transport.allCases)
    func aCallIsHandedOnceToAnotherMemberWhenItsMemberDisconnects(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let client = try await transport.member(path, daemon)
            let leaving = try await transport.member(path, daemon) { _ in .disconnect }
            let staying = try await transport.member(path, daemon) { .reply(vetoAll($0, reason: "second")) }
            _ = try await leaving.register(["stage": "risk", "name": "pair"])
            _ = try await staying.register(["stage": "risk", "name": "pair"])
            let result = try await client.runPipeline()
            #expect(outcomes(result) == ["ok"])
            #expect(leaving.calls.count == 1 && staying.calls.count == 1)
            #expect(trades(result, "rejected_signals").contains { $0["rejection_reason"] == "second" })
        }
    }

    @Test(arguments: Transport.allCases)
    func aDurableGroupWithoutMembersFailsClosed(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let client = try await transport.member(path, daemon)
            let member = try await transport.member(path, daemon) { .reply($0["output"] ?? .null) }
            _ = try await member.register(["stage": "risk", "name": "guard", "durable": true])
            member.close()
            try await waitUntil { await stageGroup(client, "risk", "guard")?["members"] == 0 }
            let result = try await client.runPipeline()
            #expect(outcomes(result) == ["no_member"])
            #expect(trades(result).isEmpty, "risk never approves while its durable group has no member")
            #expect(
                trades(result, "rejected_signals").contains {
                    $0["rejection_reason"] == "risk handler guard failed: no_member"
                })
            #expect(
                await client.request("unregister_stage", ["stage": "risk", "name": "guard"])?["result"] == [
                    "removed": 1
                ])
            let free = try await client.runPipeline()
            #expect(outcomes(free) == [])
            #expect(!trades(free).isEmpty)
        }
    }

    @Test(arguments: Transport.allCases)
    func badAnswersAreFailuresNeverCrashes(transport: Transport) async throws {
        try await withDaemon(maxMessageBytes: 64 << 10) { path, daemon in
            let client = try await transport.member(path, daemon)
            let answers: [ScriptedMember.Action] = [
                .reply(["not": "a list"]),
                .reply([["symbol": "AAPL"]]),
                .raw(Array(("{\"jsonrpc\":\"2.0\",\"id\":\"c-999999\",\"result\":[]}").utf8)),
                .raw([UInt8](repeating: UInt8(ascii: "x"), count: 70 << 10)),
                .error("handler blew up"),
            ]
            let index = Mutex(0)
            let member = try await transport.member(path, daemon) { _ in
                let i = index.withLock { i in
                    defer { i += 1 }
                    return i
                }
                return answers[min(i, answers.count - 1)]
            }
            _ = try await member.register(["stage": "risk", "name": "bad", "timeout_ms": 1000])
            var seen: [String] = []
            for _ in answers {
                let result = try await client.runPipeline()
                seen += outcomes(result)
                #expect(trades(result).isEmpty)
            }
            #expect(seen == ["malformed", "malformed", "timeout", "malformed", "error"])
            // A member that sends stage.handle to the daemon gets -32601.
            #expect(await member.request("stage.handle", ["input": [:]])?.errorCode == -32601)
            #expect(await member.request("ping")?["result"] == ["pong": true])
            let group = try #require(await stageGroup(client, "risk", "bad"))
            #expect(group["in_flight"] == 0 && group["failures"] == 5)
            let stats = await client.request("get_stats")?["result"]
            #expect(stats?["stage_stray_replies"] == 1, "the reply with an unknown id is counted")
        }
    }

    @Test(arguments: Transport.allCases)
    func aMemberCanMakeRequestsFromInsideACall(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let client = try await transport.member(path, daemon)
            let box = Mutex<ScriptedMember?>(nil)
            let member = try await transport.member(path, daemon) { params in
                // Publish from inside the call, on this member's own connection.
                let published = box.withLock { $0 }?.call("publish", ["event_type": "note", "data": 1], timeout: 5)
                return published?["result"]?["seq"] == nil ? .error("publish failed") : .reply(params["output"]!)
            }
            box.withLock { $0 = member }
            _ = try await member.register(["stage": "quant", "name": "noter"])
            let result = try await client.runPipeline()
            #expect(outcomes(result) == ["ok"])
        }
    }

    @Test(arguments: [OrchestratorMode.sync, .async])
    func bothModesCallTheSameGroupsWithTheSameResults(mode: OrchestratorMode) async throws {
        try await withDaemon(mode: mode) { path, daemon in
            let client = try await Transport.inProcess.member(path, daemon)
            let quant = try await Transport.inProcess.member(path, daemon) { params in
                .reply(.array(Array((params["output"]?.arrayValue ?? []).prefix(4))))
            }
            let risk = try await Transport.inProcess.member(path, daemon) { .reply(vetoAll($0, reason: "r")) }
            _ = try await quant.register(["stage": "quant", "name": "top4"])
            _ = try await risk.register(["stage": "risk", "name": "veto"])
            let result = try await client.runPipeline(["dry_run": true])
            #expect(result["validated_signals"]?.arrayValue?.count ?? 0 <= 4)
            #expect(outcomes(result) == ["ok", "ok"])
            #expect(result["handlers"]?.arrayValue?.map { $0["name"] } == ["top4", "veto"])
            #expect(trades(result).isEmpty)
        }
    }
}

/// Polls `condition` every 20 ms for up to 10 s.
func waitUntil(_ condition: () async -> Bool) async throws {
    let limit = ContinuousClock.now + .seconds(10)
    while !(await condition()) {
        guard ContinuousClock.now < limit else {
            Issue.record("condition not met within 10 s")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
