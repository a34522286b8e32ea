import Foundation
import Testing
import TradewireJSON

/// `tradewire halt`, `reduce`, `resume` and the trading line of `status`, end to end.
@Suite(.serialized)
struct TradingStateCLITests {
    private func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func haltReduceResumePrintTheNewState() async throws {
        try await withDaemon { daemon in
            let halt = try await daemon.tradewire(["halt", "feed", "looks", "wrong"])
            #expect(halt.status == 0, "\(halt.stderr)")
            #expect(halt.lines.count == 1)
            #expect(halt.stdout.hasPrefix("trading halted since "), "\(halt.stdout)")
            #expect(halt.stdout.hasSuffix(": feed looks wrong (was active)\n"), "\(halt.stdout)")

            let status = try await daemon.tradewire(["status"])
            #expect(status.status == 0)
            let line = try #require(status.lines.first { $0.hasPrefix("trading:") }, "\(status.stdout)")
            #expect(line.contains("halted since ") && line.hasSuffix(": feed looks wrong"))

            let reduce = try await daemon.tradewire(["--json", "reduce", "closing out"])
            #expect(reduce.status == 0, "\(reduce.stderr)")
            let reduced = try json(reduce.stdout)
            #expect(reduced["state"] == "reducing" && reduced["previous"] == "halted")
            #expect(reduced["reason"] == "closing out" && reduced["since"]?.stringValue != nil)
            #expect(reduce.lines.count == 1)

            let resume = try await daemon.tradewire(["resume"])
            #expect(resume.status == 0, "\(resume.stderr)")
            #expect(resume.stdout.hasSuffix(": resumed by operator (was reducing)\n"), "\(resume.stdout)")
            let again = try await daemon.tradewire(["resume", "--json", "all", "clear"])
            let resumed = try json(again.stdout)
            #expect(resumed["state"] == "active" && resumed["previous"] == "active" && resumed["reason"] == "all clear")

            let statusJSON = try json(try await daemon.tradewire(["status", "--json"]).stdout)
            #expect(statusJSON["trading_state"]?["state"] == "active")
            #expect(statusJSON["trading_state"]?["reason"] == "all clear")
        }
    }

    @Test func haltAndReduceNeedAReason() async throws {
        try await withDaemon { daemon in
            for command in ["halt", "reduce"] {
                let result = try await daemon.tradewire([command])
                #expect(result.status == 2, "\(command): \(result.stderr)")
                #expect(result.stderr.contains("give a reason"))
                let blank = try await daemon.tradewire([command, "  "])
                #expect(blank.status == 2)
            }
            let long = try await daemon.tradewire(["halt", String(repeating: "x", count: 1025)])
            #expect(long.status == 2 && long.stderr.contains("at most 1024"))
            let status = try json(try await daemon.tradewire(["status", "--json"]).stdout)
            #expect(status["trading_state"]?["state"] == "active", "nothing was sent")
        }
    }
}
