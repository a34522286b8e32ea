import Foundation
import Synchronization
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The kill -9 torture test of issue 9: a loop at 0.1 s, two publishers and a consumer of
/// `*`, and the daemon killed at a random moment `TW_TORTURE_KILLS` times (30 by default;
/// `make soak` runs more), restarting each time. After every restart:
/// - every acknowledged publish is in history with its seq and data;
/// - no seq is ever seen twice with different content (history and the consumer alike);
/// - each iteration has exactly one `audit_ready` or one `iteration_aborted`;
/// - the portfolio equals the fold of the journal's fills, computed here independently.
@Suite(.serialized) struct JournalTortureTests {
    static var kills: Int {
        Int(ProcessInfo.processInfo.environment["TW_TORTURE_KILLS"] ?? "") ?? 30
    }

    /// What the test has seen, shared by its threads.
    final class Ledger: @unchecked Sendable {
        struct State {
            /// seq → the publisher's data, for acknowledged publishes.
            var acknowledged: [Int: Int] = [:]
            /// seq → `type data timestamp`, from history and the consumer.
            var content: [Int: String] = [:]
            var conflicts: [String] = []
            var consumed = 0
        }
        let state = Mutex(State())

        /// Records what `seq` holds; a different content for a seen seq is a conflict.
        func see(_ event: JSONValue, from source: String) {
            guard let seq = event["seq"]?.intValue else { return }
            let text = [
                event["event_type"]?.stringValue ?? "", JSONWriter.string(event["data"] ?? .null),
                event["timestamp"]?.stringValue ?? "",
            ].joined(separator: " ")
            state.withLock { s in
                if let known = s.content[seq], known != text {
                    s.conflicts.append("seq \(seq) from \(source): \(text) but before: \(known)")
                } else {
                    s.content[seq] = text
                }
            }
        }
    }

    @Test func killMinusNineThirtyTimesLosesAndChangesNothing() async throws {
        let directory = temporaryDataDirectory("torture")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("tt")
        let arguments = ["--data-dir", directory, "--seed", "7", "--symbols", "AAPL,MSFT,GOOGL,SPY,QQQ,NVDA"]
        let ledger = Ledger()
        let stop = Atomic<Bool>(false)
        let dataReadySeen = Atomic<Int>(0)
        var verifiedThrough = 0
        var folded = FillFold(startingCash: 100_000)
        var kills = 0
        var iterationEnds: [String: Int] = [:]
        var iterationsStarted = Set<String>()
        var aborted = 0

        for round in 0...Self.kills {
            let daemon = try DaemonProcess(socketPath: path, arguments: arguments)
            #expect(await daemon.waitUntilListening(), "round \(round): \(daemon.stderr)")
            let control = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
            // Let the resumed loop's iteration in flight finish, then check everything.
            _ = await control.request("stop_loop")
            let history = await control.request("get_event_history", ["since_seq": JSONValue(verifiedThrough)])
            let events = history?["result"]?["events"]?.arrayValue ?? []
            for event in events {
                ledger.see(event, from: "history")
                guard let seq = event["seq"]?.intValue else { continue }
                let type = event["event_type"]?.stringValue ?? ""
                let id = event["metadata"]?["iteration_id"]?.stringValue ?? event["data"]?["iteration_id"]?.stringValue
                if let id, ["data_ready", "signals_ready", "validated_ready"].contains(type) {
                    iterationsStarted.insert(id)
                }
                if let id, type == "audit_ready" || type == "iteration_aborted" { iterationEnds[id, default: 0] += 1 }
                if type == "iteration_aborted" { aborted += 1 }
                if type == "executed_ready", event["metadata"]?["dry_run"] != true {
                    folded.apply(event["data"] ?? .null)
                }
                verifiedThrough = max(verifiedThrough, seq)
            }
            let acknowledged = ledger.state.withLock { $0.acknowledged }
            let content = ledger.state.withLock { $0.content }
            let lost = acknowledged.filter { content[$0.key]?.hasPrefix("torture.tick \($0.value) ") != true }
            #expect(lost.isEmpty, "round \(round): \(lost.count) acknowledged publishes missing or changed")
            let unended = iterationsStarted.filter { iterationEnds[$0] == nil }
            let twice = iterationEnds.filter { $0.value != 1 }
            #expect(unended.isEmpty, "round \(round): iterations with no audit_ready or iteration_aborted: \(unended)")
            #expect(twice.isEmpty, "round \(round): iterations ended more than once: \(twice)")
            let book = await control.request("get_portfolio")?["result"]
            #expect(
                folded.matches(book),
                "round \(round): the book \(book.map(JSONWriter.string) ?? "nil") is not the fold \(folded)")
            if round == Self.kills { break }

            // Traffic: the loop, two publishers and a consumer of `*`, then a kill at random. A
            // strategy member that answers after 50 ms keeps iterations open long enough
            // for some kills to land inside one.
            let slow = ScriptedMember(socket: try LineSocket(path: path)) { call in
                .replyLater(seconds: 0.05, call["output"] ?? .null)
            }
            _ = await slow.request("register_stage", ["stage": "strategy", "name": "slow", "timeout_ms": 2000])
            _ = await control.request("start_loop", ["interval_seconds": 0.1])
            stop.store(false, ordering: .relaxed)
            let threads =
                (0..<2).map { p in
                    Thread {
                        guard let socket = try? LineSocket(path: path) else { return }
                        socket.setReadTimeout(seconds: 5)
                        var i = 0
                        while !stop.load(ordering: .relaxed) {
                            let value = round * 10_000_000 + p * 1_000_000 + i
                            i += 1
                            guard
                                let answer = socket.roundTrip(
                                    #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"torture.tick","data":\#(value)}}"#
                                ), let seq = answer["result"]?["seq"]?.intValue
                            else { return }
                            ledger.state.withLock { $0.acknowledged[seq] = value }
                            usleep(2_000)
                        }
                    }
                } + [
                    Thread { [verifiedThrough] in
                        guard let socket = try? LineSocket(path: path) else { return }
                        socket.setReadTimeout(seconds: 5)
                        socket.write(
                            Array(
                                #"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"*","since_seq":\#(verifiedThrough)}}"#
                                    .utf8) + [10])
                        while !stop.load(ordering: .relaxed), let line = socket.readLine() {
                            guard let message = try? JSONParser.parse(line), message["method"] == "event",
                                let event = message["params"]?["event"]
                            else { continue }
                            ledger.see(event, from: "consumer")
                            ledger.state.withLock { $0.consumed += 1 }
                        }
                    }
                ] + [
                    // A watcher of data_ready alone (the consumer of `*` may lag behind).
                    Thread {
                        guard let socket = try? LineSocket(path: path) else { return }
                        socket.setReadTimeout(seconds: 5)
                        socket.write(
                            Array(
                                #"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"data_ready"}}"#
                                    .utf8)
                                + [10])
                        while !stop.load(ordering: .relaxed), let line = socket.readLine() {
                            if line.count > 200 { dataReadySeen.add(1, ordering: .relaxed) }
                        }
                    }
                ]
            threads.forEach { $0.start() }
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...900)))
            if round % 3 == 0 {
                // Every third kill lands right after an iteration's data_ready: inside it.
                let seen = dataReadySeen.load(ordering: .relaxed)
                let deadline = ContinuousClock.now + .seconds(5)
                while dataReadySeen.load(ordering: .relaxed) == seen, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .microseconds(200))
                }
            }
            kill(daemon.process.processIdentifier, SIGKILL)
            _ = await daemon.waitForExit()
            kills += 1
            stop.store(true, ordering: .relaxed)
            while threads.contains(where: \.isExecuting) { try await Task.sleep(for: .milliseconds(10)) }
        }
        // The last daemon is still running: stop it (it checked clean above).
        let last = ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
        _ = await last.request("shutdown")
        try await Task.sleep(for: .milliseconds(500))
        let summary = ledger.state.withLock { s in (s.acknowledged.count, s.consumed, s.conflicts) }
        #expect(kills == Self.kills)
        #expect(summary.0 > 0 && summary.1 > 0 && !iterationEnds.isEmpty && folded.orders > 0)
        #expect(aborted > 0, "some kill landed inside an iteration (else the abort rule went untested)")
        #expect(summary.2.isEmpty, "\(summary.2.prefix(5))")
        print(
            "torture: \(kills) kills, \(summary.0) acknowledged publishes, \(summary.1) events consumed, "
                + "\(iterationEnds.count) iterations (\(aborted) aborted), \(folded.orders) fills, \(verifiedThrough) seqs"
        )
    }
}

/// The book as a fold of `executed_ready` fills, written independently of the daemon's
/// ledger: cash, shares and commissions per fill, compared at a tenth of a cent.
struct FillFold: CustomStringConvertible {
    var cash: Double
    var positions: [String: Int] = [:]
    var commissions = 0.0
    var orders = 0

    init(startingCash: Double) { cash = startingCash }

    mutating func apply(_ results: JSONValue) {
        for result in results.arrayValue ?? [] where result["executed"] == true {
            guard let symbol = result["signal"]?["symbol"]?.stringValue, let qty = result["quantity"]?.intValue,
                let price = result["fill_price"]?.doubleValue, let side = result["side"]?.stringValue
            else { continue }
            let commission = result["commission"]?.doubleValue ?? 0
            let signed = side == "buy" ? qty : -qty
            cash -= Double(signed) * price + commission
            positions[symbol, default: 0] += signed
            if positions[symbol] == 0 { positions[symbol] = nil }
            commissions += commission
            orders += 1
        }
    }

    func matches(_ book: JSONValue?) -> Bool {
        guard let book, let bookCash = book["cash"]?.doubleValue else { return false }
        var shares: [String: Int] = [:]
        for position in book["positions"]?.arrayValue ?? [] {
            if let symbol = position["symbol"]?.stringValue { shares[symbol] = position["qty"]?.intValue }
        }
        return abs(bookCash - cash) < 0.001 && shares == positions
            && abs((book["commissions"]?.doubleValue ?? -1) - commissions) < 0.001 && book["orders"]?.intValue == orders
    }

    var description: String { "cash \(cash), positions \(positions), commissions \(commissions), orders \(orders)" }
}
