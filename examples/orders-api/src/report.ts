/** Every night at 02:00 UTC (try it now: nimbus schedule run -f nightlyReport). */
export const nightly = async (event: { time: string; 'detail-type': string }) => {
  console.log(`NIGHTLY REPORT for ${event.time.slice(0, 10)} (${event['detail-type']})`);
  return { reportedAt: event.time };
};
