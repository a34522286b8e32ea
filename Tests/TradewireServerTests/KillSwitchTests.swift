import Foundation
import Testing
import TradewireJSON
import TradewireServer
import TradewireTesting

/// `set_trading_state` over a live daemon (PROTOCOL §12): the answer, the event, get_status,
/// what risk does in each state, and the precise errors.
@Suite(.serialized) struct KillSwitchTests {
    private func client(_ path: String) throws -> ScriptedMember {
        ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
    }

    private func changes(_ client: ScriptedMember) async -> [JSONValue] {
        let history = await client.request("get_event_history", ["event_type": "trading_state_changed"])
        return (history?["result"]?["events"]?.arrayValue ?? []).compactMap { $0["data"] }
    }

    @Test func haltingAnswersAnnouncesShowsInStatusAndRejectsEveryOrder() async throws {
        try await withDaemon { path, _ in
            let c = try client(path)
            let initial = await c.request("get_status")?["result"]?["trading_state"]
            #expect(initial?["state"] == "active" && initial?["reason"] == "initial state")
            #expect(initial?["since"]?.stringValue?.hasSuffix("Z") == true)

            let answer = await c.request("set_trading_state", ["state": "halted", "reason": "broker maintenance"])
            let halted = try #require(answer?["result"]?.objectValue, "\(String(describing: answer))")
            #expect(halted.members.map(\.key).sorted() == ["previous", "reason", "since", "state"])
            #expect(halted["state"] == "halted" && halted["previous"] == "active")
            #expect(halted["reason"] == "broker maintenance")
            let status = await c.request("get_status")?["result"]?["trading_state"]
            #expect(status == ["state": "halted", "since": halted["since"]!, "reason": "broker maintenance"])
            #expect(
                await changes(c) == [
                    [
                        "state": "halted", "previous": "active", "reason": "broker maintenance", "by": "operator",
                        "since": halted["since"]!,
                    ]
                ])

            let run = try await c.runPipeline()
            #expect(trades(run).isEmpty && run["execution_results"] == [])
            let rejected = trades(run, "rejected_signals")
            #expect(!rejected.isEmpty)
            #expect(rejected.allSatisfy { $0["rejection_reason"] == "trading halted: broker maintenance" })
            let portfolio = await c.request("get_portfolio")?["result"]
            #expect(portfolio?["orders"] == 0 && portfolio?["risk_budget"]?["used"] == 0)

            // The same state again: accepted and announced; `since` stays, the reason is new.
            let again = await c.request("set_trading_state", ["state": "halted", "reason": "still maintenance"])
            #expect(again?["result"]?["previous"] == "halted" && again?["result"]?["since"] == halted["since"])
            let resumed = await c.request("set_trading_state", ["state": "active", "reason": "done"])
            #expect(resumed?["result"]?["previous"] == "halted" && resumed?["result"]?["state"] == "active")
            #expect(await changes(c).map { $0["previous"] } == ["active", "halted", "halted"])
            #expect(try await c.runPipeline(["dry_run": true]).objectValue != nil)
            #expect(!trades(try await c.runPipeline()).isEmpty, "active again: orders are approved")
            let methods = await c.request("rpc.discover")?["result"]?["methods"]?.arrayValue ?? []
            let method = methods.first { $0["name"] == "set_trading_state" }
            #expect(method?["params"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["state", "reason"])
        }
    }

    @Test func badParamsGetPreciseErrorsAndChangeNothing() async throws {
        try await withDaemon { path, _ in
            let c = try client(path)
            func error(_ params: JSONValue) async -> (Int?, String?) {
                let answer = await c.request("set_trading_state", params)
                let first = answer?["error"]?["data"]?["errors"]?.arrayValue?.first
                return (answer?.errorCode, first?["path"]?.stringValue)
            }
            let long = String(repeating: "x", count: 1025)
            let cases: [(JSONValue, String)] = [
                (["state": "paused", "reason": "x"], "/state"), (["state": 1, "reason": "x"], "/state"),
                (["reason": "x"], "/state"), (["state": "halted"], "/reason"),
                (["state": "halted", "reason": ""], "/reason"), (["state": "halted", "reason": " \t "], "/reason"),
                (["state": "halted", "reason": JSONValue(long)], "/reason"),
                (["state": "halted", "reason": 7], "/reason"),
                (["state": "halted", "reason": "two\nlines"], "/reason"),
            ]
            for (params, path) in cases {
                let (code, where_) = await error(params)
                #expect(code == -32602 && where_ == path, "\(params)")
            }
            let hostile: [JSONValue] = [.null, -1, 1e308, "", [], [:], [[1]], true, "halted\u{0}", "a\nb"]
            for value in hostile {
                for params: JSONValue in [["state": value, "reason": "x"], ["state": "halted", "reason": value]] {
                    let answer = await c.request("set_trading_state", params)
                    #expect(answer?.errorCode == -32602, "\(params): \(String(describing: answer))")
                }
            }
            let unknown = await c.request("set_trading_state", ["state": "halted", "reason": "x", "by": "me"])
            #expect(unknown?.errorCode == -32602)
            let paused = await c.request("set_trading_state", ["state": "paused", "reason": "x"])
            #expect(paused?["error"]?["message"]?.stringValue?.contains("one of active, reducing, halted") == true)
            #expect(await c.request("get_status")?["result"]?["trading_state"]?["state"] == "active")
            #expect(await changes(c).isEmpty)
            let longest = String(repeating: "y", count: 1024)
            let fits = await c.request("set_trading_state", ["state": "halted", "reason": JSONValue(longest)])
            #expect(fits?["result"]?["reason"] == JSONValue(longest))
        }
    }

    @Test func reducingApprovesOnlySellsOfWhatIsHeldCappedAtIt() async throws {
        try await withDaemon { path, _ in
            let c = try client(path)
            _ = try await c.runPipeline()
            let positions = await c.request("get_portfolio")?["result"]?["positions"]?.arrayValue ?? []
            let long = try #require(positions.first { ($0["qty"]?.intValue ?? 0) > 0 }, "the first run bought")
            let symbol = try #require(long["symbol"]?.stringValue)
            let held = try #require(long["qty"]?.intValue)
            let flat = try #require(
                ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"].first { s in
                    !positions.contains { $0["symbol"] == JSONValue(s) }
                })
            _ = await c.request("set_trading_state", ["state": "reducing", "reason": "trim"])
            func order(_ id: String, _ symbol: String, _ action: String) -> JSONValue {
                [
                    "id": JSONValue(id), "symbol": JSONValue(symbol), "action": JSONValue(action),
                    "strategy_name": "manual", "confidence": 1,
                ]
            }
            let published = await c.request(
                "publish",
                [
                    "event_type": "validated_ready",
                    "data": [order("sell", symbol, "SELL"), order("buy", symbol, "BUY"), order("open", flat, "SELL")],
                ])
            let receipt = try #require(published?["result"], "\(String(describing: published))")
            #expect(receipt["completed"] == true && receipt["approved"] == 1 && receipt["rejected"] == 2)
            let approvedEvents = await c.request("get_event_history", ["event_type": "approved_ready", "limit": 1])
            let approved = approvedEvents?["result"]?["events"]?.arrayValue?.first?["data"]?.arrayValue ?? []
            #expect(approved.count == 1 && approved.first?["id"] == "sell")
            #expect((approved.first?["qty"]?.intValue ?? 0) <= held && (approved.first?["qty"]?.intValue ?? 0) > 0)
            let after = await c.request("get_portfolio")?["result"]?["positions"]?.arrayValue ?? []
            let left = after.first { $0["symbol"] == JSONValue(symbol) }?["qty"]?.intValue ?? 0
            #expect(left == held - (approved.first?["qty"]?.intValue ?? 0), "the SELL executed")
            #expect(!after.contains { $0["symbol"] == JSONValue(flat) }, "no short was opened")
        }
    }

    @Test(arguments: Transport.allCases)
    func aRiskGroupCannotApproveAroundAHalt(transport: Transport) async throws {
        try await withDaemon { path, daemon in
            let operatorClient = try await transport.member(path, daemon)
            // The group halts trading while it thinks, then approves what it was given.
            let member = try await transport.member(path, daemon) { params in
                _ = operatorClient.call("set_trading_state", ["state": "halted", "reason": "mid-call"])
                return .reply(params["output"] ?? [])
            }
            _ = try await member.register(["stage": "risk", "name": "approver"])
            let result = try await operatorClient.runPipeline()
            #expect(member.calls.count == 1)
            let given = member.calls.first?["output"]?.arrayValue ?? []
            #expect(given.contains { $0["approved"] == true && $0["action"] != "HOLD" }, "the built-in approved")
            #expect(trades(result).isEmpty && result["execution_results"] == [])
            #expect(
                trades(result, "rejected_signals").contains { $0["rejection_reason"] == "trading halted: mid-call" })
            let portfolio = await operatorClient.request("get_portfolio")?["result"]
            #expect(portfolio?["orders"] == 0 && portfolio?["risk_budget"]?["used"] == 0)
            // While halted the built-in rejects first; the group cannot approve a rejected signal.
            let next = try await operatorClient.runPipeline()
            #expect(trades(next).isEmpty)
            #expect(
                trades(next, "rejected_signals").allSatisfy { $0["rejection_reason"] == "trading halted: mid-call" })
        }
    }
}
