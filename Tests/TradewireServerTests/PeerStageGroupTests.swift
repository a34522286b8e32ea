import Foundation
import Logging
import NIOPosix
import Synchronization
import Testing
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTrading

@testable import TradewireServer

/// Stage groups whose members are connected to other cluster nodes (PROTOCOL §13), as the
/// registry sees them. The transport (the database) is a stub here; the cluster's process
/// tests run it for real.
struct PeerStageGroupTests {
    static func peer(
        _ node: String, _ stage: PipelineStage, _ name: String, mode: StageMode = .after, members: Int = 1,
        concurrency: Int = 1
    ) -> PeerStageGroup {
        PeerStageGroup(
            node: node, stage: stage, name: name, mode: mode, timeoutMilliseconds: 2000,
            onFailure: .defaultPolicy(for: stage), durable: false, members: members, concurrency: concurrency)
    }

    static func call(_ stage: PipelineStage = .risk) -> StageCall {
        StageCall(
            stage: stage, iteration: 7, iterationID: "it-7", deadline: .now + .seconds(5),
            deadlineDate: Date().addingTimeInterval(5), dryRun: true, input: .signals([]), output: .signals([]),
            account: nil)
    }

    @Test func otherNodesGroupsRunAfterLocalOnesAndCountInTheStatus() {
        let registry = StageRegistry(logger: Logger(label: "t"))
        registry.setPeerGroups([
            Self.peer("x", .risk, "guard", members: 2, concurrency: 3),
            Self.peer("y", .risk, "guard"),
            Self.peer("y", .strategy, "picker", mode: .replace),
            Self.peer("y", .quant, "empty", members: 0),
        ])
        #expect(registry.handlers(for: .risk).after.map(\.name) == ["guard"])
        #expect(registry.handlers(for: .strategy).replace?.name == "picker")
        #expect(registry.handlers(for: .quant).after.isEmpty)  // no member anywhere: no group
        let risk = registry.status()["risk"]?.arrayValue ?? []
        #expect(risk.count == 1)
        #expect(risk.first?["members"]?.intValue == 3)
        // Gone from the other nodes: gone here.
        registry.setPeerGroups([])
        #expect(registry.handlers(for: .risk).after.isEmpty)
        #expect(registry.status()["risk"]?.arrayValue?.isEmpty == true)
    }

    @Test func aCallGoesToTheLeastLoadedNodeWithTheCallAsItsParams() async throws {
        let registry = StageRegistry(logger: Logger(label: "t"))
        registry.setPeerGroups([Self.peer("x", .risk, "guard"), Self.peer("y", .risk, "guard")])
        let sent = Mutex<[(String, JSONValue)]>([])
        let (gate, release) = AsyncStream.makeStream(of: Void.self)
        registry.setPeerCaller { node, stage, params, timeout in
            #expect(stage == .risk)
            sent.withLock { $0.append((node, (try? JSONParser.parse(params)) ?? .null)) }
            for await _ in gate { break }
            return .success(.array([]))
        }
        let handler = try #require(registry.handlers(for: .risk).after.first)
        // Two calls at once: one per node (each node's members take one at a time).
        async let first = handler.handle(Self.call())
        async let second = handler.handle(Self.call())
        try await Self.waitUntil { sent.withLock { $0.count } == 2 }
        #expect(Set(sent.withLock { $0.map(\.0) }) == ["x", "y"])
        #expect(registry.status()["risk"]?.arrayValue?.first?["in_flight"]?.intValue == 2)
        release.yield()
        release.yield()
        release.finish()
        let results = await [first, second]
        for result in results {
            guard case .success(let reply) = result else {
                Issue.record("a peer call failed: \(result)")
                continue
            }
            #expect(reply.value == .signals([]))
        }
        let params = sent.withLock { $0[0].1 }
        #expect(params["stage"]?.stringValue == "risk")
        #expect(params["name"]?.stringValue == "guard")
        #expect(params["mode"]?.stringValue == "after")
        #expect(params["call"]?["iteration_id"]?.stringValue == "it-7")
        #expect(params["call"]?["output"] == .array([]))
        let status = registry.status()["risk"]?.arrayValue?.first
        #expect(status?["in_flight"]?.intValue == 0)
        #expect(status?["calls"]?.intValue == 2)
    }

    @Test func aForwardedCallIsNeverPassedOnToAThirdNode() async {
        let registry = StageRegistry(logger: Logger(label: "t"))
        registry.setPeerGroups([Self.peer("x", .risk, "guard")])
        let passedOn = Mutex(0)
        registry.setPeerCaller { _, _, _, _ in
            passedOn.withLock { $0 += 1 }
            return .success(.array([]))
        }
        let params = #"{"stage":"risk","name":"guard","mode":"after","call":{"stage":"risk"}}"#
        let answer = await registry.serveForwarded(params: params, remaining: .seconds(1))
        #expect(answer.isError)
        #expect((try? JSONParser.parse(answer.json))?["reason"]?.stringValue == "no_member")
        #expect(passedOn.withLock { $0 } == 0)
        let unreadable = await registry.serveForwarded(params: "[1]", remaining: .seconds(1))
        #expect(unreadable.isError && unreadable.json.contains("malformed"))
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < end else {
                Issue.record("condition not met in 5 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// A group on another node is the same group: a member joining here takes its options
    /// (and may not give others), and a second replace group for a stage is refused
    /// (-32030) wherever the first one's members are.
    @Test func aGroupOnAnotherNodeLendsItsOptionsAndItsReplaceModeIsExclusive() throws {
        let registry = StageRegistry(logger: Logger(label: "t"))
        registry.setPeerGroups([Self.peer("y", .strategy, "picker", mode: .replace)])
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let connection = ServerConnection(
            id: 1, outbox: Outbox(budget: 1 << 20, eventLoop: loop, drain: {}), eventLoop: loop, closeWhenFlushed: {})
        func register(_ name: String, mode: StageMode? = nil, timeout: Int? = nil) throws(RPCError)
            -> StageRegistration
        {
            try registry.register(
                stage: .strategy, name: name, mode: mode, timeoutMilliseconds: timeout, onFailure: nil, durable: nil,
                concurrency: 1, connection: connection)
        }
        func refusal(_ name: String, mode: StageMode? = nil, timeout: Int? = nil) -> RPCError? {
            do {
                _ = try register(name, mode: mode, timeout: timeout)
                return nil
            } catch {
                return error
            }
        }
        let conflict = refusal("other", mode: .replace)
        #expect(conflict?.code == -32030 && conflict?.message.contains("picker") == true)
        let mismatch = refusal("picker", timeout: 9999)
        #expect(mismatch?.code == -32602 && mismatch?.message.contains("timeout_ms") == true)
        let joined = try register("picker")
        #expect(joined.options.mode == .replace && joined.options.timeoutMilliseconds == 2000)
        #expect(try register("after-group").options.mode == .after, "after groups are not exclusive")
    }
}
