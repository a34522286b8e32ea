import Foundation
import TradewireJSON
import TradewireTrading

extension JournalFold {
    /// The fold as a checkpoint document: `{"version": 1, "as_of_seq", "ledger", "budget":
    /// {"day", "committed"}, "last_iteration", "loop": {"iterations", "last"}, "summaries",
    /// "open": [...], "unreadable", "trading_state": null | {"state", "since", "reason"}}`.
    public var checkpointJSON: JSONValue {
        var budgetObject: JSONObject = ["committed": JSONValue(budget.committed)]
        budgetObject["day"] = budget.day.map { JSONValue(Int($0)) } ?? .null
        let openList: [JSONValue] = openIterations.map { iteration in
            .object([
                "number": JSONValue(iteration.number), "id": JSONValue(iteration.id),
                "last_stage": JSONValue(iteration.lastStage.rawValue),
                "started_at": JSONValue(RFC3339.string(from: iteration.startedAt)),
                "dry_run": JSONValue(iteration.dryRun),
                "loop": JSONValue(iteration.loop),
                "execution_results": .array(iteration.executionResults.map(\.jsonValue)),
            ])
        }
        return .object([
            "version": 1, "as_of_seq": JSONValue(asOfSeq), "ledger": ledger.checkpointJSON,
            "budget": .object(budgetObject), "last_iteration": JSONValue(lastIteration),
            "loop": .object([
                "iterations": JSONValue(loopIterations),
                "last": lastLoopIteration.map(\.jsonValue) ?? .null,
            ]),
            "summaries": .array(summaries.map(\.jsonValue)), "open": .array(openList),
            "unreadable": JSONValue(unreadable), "trading_state": tradingState?.jsonValue ?? .null,
        ])
    }

    /// Reads ``checkpointJSON``.
    public init(checkpoint json: JSONValue, summaryCapacity: Int = 10_000) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: "")
        guard try r.int("version") == 1 else {
            throw JSONDecodingError(path: "/version", message: "unknown checkpoint version")
        }
        guard let ledgerJSON = r.value("ledger") else {
            throw JSONDecodingError(path: "/ledger", message: "missing")
        }
        self.init(startingCash: .zero, summaryCapacity: summaryCapacity)
        ledger = try Ledger(checkpoint: ledgerJSON)
        asOfSeq = try r.int("as_of_seq")
        lastIteration = try r.int("last_iteration")
        unreadable = try r.optionalInt("unreadable") ?? 0
        if let b = try r.optionalObject("budget") {
            budget = Budget(day: try b.optionalInt("day").map(Int64.init), committed: try b.double("committed"))
        }
        if let l = try r.optionalObject("loop") {
            loopIterations = try l.int("iterations")
            if let last = l.value("last"), !last.isNull {
                let v = try JSONObjectReader(last, path: "/loop/last")
                lastLoopIteration = IterationSummaryView(
                    iteration: try v.int("iteration"), iterationID: try v.string("iteration_id"),
                    finishedAt: try v.date("finished_at"), durationSeconds: try v.double("duration_seconds"),
                    signals: try v.int("signals"), approved: try v.int("approved"), executed: try v.int("executed"),
                    errors: try v.int("errors"))
            }
        }
        if let state = r.value("trading_state"), !state.isNull {
            tradingState = try TradingStateSnapshot(json: state, path: "/trading_state")
        }
        for (index, item) in (try r.optionalArray("summaries") ?? []).enumerated() {
            summaries.append(try IterationSummary(json: item, path: "/summaries/\(index)"))
        }
        for (index, item) in (try r.optionalArray("open") ?? []).enumerated() {
            let o = try JSONObjectReader(item, path: "/open/\(index)")
            var results: [ExecutionResult] = []
            for (i, result) in (try o.optionalArray("execution_results") ?? []).enumerated() {
                results.append(try ExecutionResult(json: result, path: o.pointer("execution_results") + "/\(i)"))
            }
            let iteration = OpenIteration(
                number: try o.int("number"), id: try o.string("id"),
                lastStage: PipelineStage(rawValue: try o.string("last_stage")) ?? .none,
                startedAt: try o.date("started_at"), dryRun: try o.bool("dry_run"), loop: try o.bool("loop"),
                executionResults: results)
            open[iteration.id] = iteration
        }
    }
}
