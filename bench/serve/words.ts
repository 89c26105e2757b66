/** Common short English words: text prompts of random words tokenize to about one token per word in BPE vocabularies. */
export const WORDS: readonly string[] = `the of and to in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there one all we their has would when been if more will no other can who so its
time year people way day man thing woman life child world school state family student group country problem hand part
place case week company system program question work government number night point home water room mother area money
story fact month lot right study book eye job word business issue side kind head house service friend father power hour
game line end member law car city community name president team minute idea kid body information back parent face
others level office door health person art war history party result change morning reason research girl guy moment air
teacher force education foot boy age policy music market sense nation plan college interest death experience effect use
class control care field development role effort rate heart drug show leader light voice wife police mind price report
decision son view relationship town road arm difference value building action model season society tax director early
position player record paper space ground form event official matter center couple site project activity star table need
court oil situation cost industry figure street image phone data picture practice piece land product doctor wall patient
worker news test movie north love support technology step baby computer type attention film tree source organization
hair window evidence population site green blue red small large old new good great little long high big young
different important public bad same able last late hard major better economic strong possible whole free military true
federal international full special easy clear recent certain personal open red difficult available likely short single
medical current wrong private past foreign fine common poor natural significant similar hot dead central happy serious
ready simple left physical general environmental financial river dog cat bird fish horse garden summer winter spring
autumn rain snow wind sun moon sea ocean mountain forest island bridge train ship plane letter song dance color number`
  .split(/\s+/)
  .filter((w) => w !== '');
