import Foundation
import Testing
import TradewireJSON

@testable import TradewireBus

/// The consumer's bookkeeping as a value (PROTOCOL §11), driven by a test clock.
@Suite struct ConsumerStateTests {
    let start = ContinuousClock.now
    let wall = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ seq: Int) -> Event {
        Event(seq: seq, type: "t.x", timestamp: wall, payload: JSONValue(1), metadata: [:])
    }

    func settings(maxDeliver: Int = 3, maxInFlight: Int = 256) throws -> ConsumerSettings {
        ConsumerSettings(
            name: "c", pattern: try EventPattern("t.*"), ackWaitMilliseconds: 100, maxDeliver: maxDeliver,
            maxInFlight: maxInFlight)
    }

    @Test func catchingUpFromTheJournalHandsOverToTheLiveTailWithoutAGapOrDuplicate() throws {
        var state = ConsumerState(settings: try settings(), startAfter: 0, journaled: true)
        state.join(1)
        // Live events while the journal is read: kept in the tail, not taken yet.
        for seq in 4...6 {
            let taken = state.offer(event(seq))
            #expect(!taken)
        }
        #expect(state.refillQuery == 0)
        // The journal's page (short: its end) overlaps the tail: 1...5.
        state.refill((1...5).map(event), after: 0, requested: 1024)
        #expect(state.refillQuery == nil, "live again")
        let live = state.offer(event(7))
        #expect(live)
        let out = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 1 })
        #expect(out.map(\.event.seq) == [1, 2, 3, 4, 5, 6, 7])
    }

    @Test func anOverflowedTailMakesTheConsumerReadTheJournalAgain() throws {
        var state = ConsumerState(settings: try settings(), startAfter: 0, journaled: true)
        for seq in 1...(ConsumerState.tailLimit + 1) { state.offer(event(seq)) }
        state.refill([event(1)], after: 0, requested: 1024)
        #expect(state.refillQuery == 1, "still catching up after the page")
        state.refill([], after: 1, requested: 1024)
        #expect(state.refillQuery == nil)
    }

    @Test func aFullLiveBacklogFallsBackToTheJournalOrCountsDropsWithoutOne() throws {
        var journaled = ConsumerState(settings: try settings(), startAfter: 0, journaled: true)
        journaled.refill([], after: 0, requested: 1024)
        for seq in 1...ConsumerState.liveBacklogLimit { journaled.offer(event(seq)) }
        let overflow = journaled.offer(event(ConsumerState.liveBacklogLimit + 1))
        #expect(!overflow)
        #expect(journaled.readThrough == ConsumerState.liveBacklogLimit && journaled.dropped == 0)
        var ephemeral = ConsumerState(settings: try settings(), startAfter: 0, journaled: false)
        for seq in 1...(ConsumerState.ephemeralBacklogLimit + 2) { ephemeral.offer(event(seq)) }
        #expect(ephemeral.dropped == 2 && ephemeral.waiting == ConsumerState.ephemeralBacklogLimit)
    }

    @Test func expiryRedeliversRoundRobinUntilMaxDeliverThenBuries() throws {
        var state = ConsumerState(settings: try settings(maxDeliver: 2), startAfter: 0, journaled: false)
        state.join(1)
        state.join(2)
        for seq in 1...2 { state.offer(event(seq)) }
        let first = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 9 })
        #expect(first.map(\.member) == [1, 2] && first.allSatisfy { $0.attempt == 1 })
        let early = state.expire(now: start + .milliseconds(99), wall: wall, nextDeadLetterID: { 9 })
        let due = state.expire(now: start + .milliseconds(100), wall: wall, nextDeadLetterID: { 9 })
        #expect(early == 0 && due == 2)
        let second = state.take(now: start + .milliseconds(100), available: { $0 == 2 }, nextDeadLetterID: { 9 })
        #expect(second.map(\.member) == [2, 2] && second.allSatisfy { $0.attempt == 2 }, "only available members")
        var ids = 10
        _ = state.expire(now: start + .seconds(1), wall: wall) {
            defer { ids += 1 }
            return ids
        }
        #expect(state.unacked.isEmpty && state.deadLetters.map(\.id) == [10, 11])
        #expect(state.deadLetters.allSatisfy { $0.attempts == 2 && $0.lastError == "ack_wait expired" })
        let retried = state.retry(deadLetter: 10)
        let twice = state.retry(deadLetter: 10)
        #expect(retried && !twice)
        let again = state.take(now: start + .seconds(1), available: { _ in true }, nextDeadLetterID: { 0 })
        #expect(again.map(\.attempt) == [1] && again.first?.event.seq == 1)
    }

    @Test func maxInFlightHoldsNewEventsBackButNotRedeliveries() throws {
        var state = ConsumerState(settings: try settings(maxInFlight: 2), startAfter: 0, journaled: false)
        state.join(1)
        for seq in 1...5 { state.offer(event(seq)) }
        let firstTwo = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 0 })
        let held = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 0 })
        #expect(firstTwo.count == 2 && held.isEmpty)
        let acked = state.ack(upTo: 1, member: 1)
        let notTheirs = state.ack(upTo: 9, member: 2)
        #expect(acked == 1 && notTheirs == 0)
        let next = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 0 })
        #expect(next.map(\.event.seq) == [3])
        #expect(state.position == 3 && state.waiting == 2)
        state.leave(1)
        let noMember = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 0 })
        #expect(noMember.isEmpty, "no member")
        state.join(3)
        let moved = state.take(now: start, available: { _ in true }, nextDeadLetterID: { 0 })
        #expect(moved.map(\.event.seq) == [2, 3] && moved.allSatisfy { $0.attempt == 2 && $0.member == 3 })
    }
}
