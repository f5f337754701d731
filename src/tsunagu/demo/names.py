"""Pools of Japanese names, places and spellings the synthetic retailer draws from.

Everything here is plain data plus a few string helpers (half-width katakana, full-width digits).
The tables are whitespace-separated text so they stay compact and easy to extend. Lat/lon of the
store sites are close to the real town centres; postcodes are the real ones for the town where we
know them and plausible ones otherwise.
"""

from __future__ import annotations


def _rows(table: str, width: int) -> list[tuple[str, ...]]:
    words = table.split()
    assert len(words) % width == 0, "a table row is missing a field"
    return [tuple(words[i : i + width]) for i in range(0, len(words), width)]


def _names(table: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((kanji, kana, romaji) for kanji, kana, romaji in _rows(table, 3))


# kanji katakana romaji, in rough order of frequency.
SURNAMES = _names("""
佐藤 サトウ sato  鈴木 スズキ suzuki  高橋 タカハシ takahashi  田中 タナカ tanaka  伊藤 イトウ ito
渡辺 ワタナベ watanabe  山本 ヤマモト yamamoto  中村 ナカムラ nakamura  小林 コバヤシ kobayashi  加藤 カトウ kato
吉田 ヨシダ yoshida  山田 ヤマダ yamada  佐々木 ササキ sasaki  山口 ヤマグチ yamaguchi  松本 マツモト matsumoto
井上 イノウエ inoue  木村 キムラ kimura  林 ハヤシ hayashi  斎藤 サイトウ saito  清水 シミズ shimizu
山崎 ヤマザキ yamazaki  森 モリ mori  池田 イケダ ikeda  橋本 ハシモト hashimoto  阿部 アベ abe
石川 イシカワ ishikawa  山下 ヤマシタ yamashita  中島 ナカジマ nakajima  石井 イシイ ishii  小川 オガワ ogawa
前田 マエダ maeda  岡田 オカダ okada  長谷川 ハセガワ hasegawa  藤田 フジタ fujita  後藤 ゴトウ goto
近藤 コンドウ kondo  村上 ムラカミ murakami  遠藤 エンドウ endo  青木 アオキ aoki  坂本 サカモト sakamoto
斉藤 サイトウ saito  福田 フクダ fukuda  太田 オオタ ota  西村 ニシムラ nishimura  藤井 フジイ fujii
金子 カネコ kaneko  岡本 オカモト okamoto  藤原 フジワラ fujiwara  中野 ナカノ nakano  三浦 ミウラ miura
原田 ハラダ harada  中川 ナカガワ nakagawa  松田 マツダ matsuda  竹内 タケウチ takeuchi  小野 オノ ono
田村 タムラ tamura  中山 ナカヤマ nakayama  和田 ワダ wada  石田 イシダ ishida  森田 モリタ morita
上田 ウエダ ueda  原 ハラ hara  内田 ウチダ uchida  柴田 シバタ shibata  酒井 サカイ sakai
宮崎 ミヤザキ miyazaki  横山 ヨコヤマ yokoyama  高木 タカギ takagi  安藤 アンドウ ando  宮本 ミヤモト miyamoto
大野 オオノ ono  小島 コジマ kojima  谷口 タニグチ taniguchi  今井 イマイ imai  工藤 クドウ kudo
高田 タカダ takada  増田 マスダ masuda  丸山 マルヤマ maruyama  杉山 スギヤマ sugiyama  村田 ムラタ murata
大塚 オオツカ otsuka  新井 アライ arai  小山 コヤマ koyama  平野 ヒラノ hirano  藤本 フジモト fujimoto
河野 コウノ kono  上野 ウエノ ueno  野口 ノグチ noguchi  武田 タケダ takeda  松井 マツイ matsui
千葉 チバ chiba  岩崎 イワサキ iwasaki  菅原 スガワラ sugawara  木下 キノシタ kinoshita  久保 クボ kubo
佐野 サノ sano  野村 ノムラ nomura  松尾 マツオ matsuo  市川 イチカワ ichikawa  菊地 キクチ kikuchi
杉本 スギモト sugimoto  古川 フルカワ furukawa  大西 オオニシ onishi  島田 シマダ shimada  水野 ミズノ mizuno
桜井 サクライ sakurai  高野 タカノ takano  渡部 ワタナベ watanabe  吉川 ヨシカワ yoshikawa  山内 ヤマウチ yamauchi
西田 ニシダ nishida  飯田 イイダ iida  菊池 キクチ kikuchi  西川 ニシカワ nishikawa  小松 コマツ komatsu
北村 キタムラ kitamura  安田 ヤスダ yasuda  五十嵐 イガラシ igarashi  川口 カワグチ kawaguchi  平田 ヒラタ hirata
関 セキ seki  中田 ナカタ nakata  久保田 クボタ kubota  服部 ハットリ hattori  東 アズマ azuma
岩田 イワタ iwata  土屋 ツチヤ tsuchiya  川崎 カワサキ kawasaki  福島 フクシマ fukushima  本田 ホンダ honda
辻 ツジ tsuji  樋口 ヒグチ higuchi  秋山 アキヤマ akiyama  田口 タグチ taguchi  永井 ナガイ nagai
山中 ヤマナカ yamanaka  中西 ナカニシ nakanishi  吉村 ヨシムラ yoshimura  川上 カワカミ kawakami  石原 イシハラ ishihara
大橋 オオハシ ohashi  松岡 マツオカ matsuoka  馬場 ババ baba  浅野 アサノ asano  荒木 アラキ araki
大久保 オオクボ okubo  野田 ノダ noda  小西 コニシ konishi  田辺 タナベ tanabe  川村 カワムラ kawamura
星野 ホシノ hoshino  黒田 クロダ kuroda  堀 ホリ hori  尾崎 オザキ ozaki  望月 モチヅキ mochizuki
永田 ナガタ nagata  熊谷 クマガイ kumagai  内藤 ナイトウ naito  松浦 マツウラ matsuura  大川 オオカワ okawa
平井 ヒライ hirai  早川 ハヤカワ hayakawa
""")

GIVEN_FEMALE = _names("""
陽子 ヨウコ yoko  美咲 ミサキ misaki  さくら サクラ sakura  陽菜 ヒナ hina  結衣 ユイ yui
葵 アオイ aoi  凛 リン rin  莉子 リコ riko  美羽 ミウ miu  愛 アイ ai
彩 アヤ aya  真由美 マユミ mayumi  恵子 ケイコ keiko  裕子 ユウコ yuko  久美子 クミコ kumiko
智子 トモコ tomoko  直美 ナオミ naomi  由美子 ユミコ yumiko  明美 アケミ akemi  幸子 サチコ sachiko
京子 キョウコ kyoko  典子 ノリコ noriko  美穂 ミホ miho  麻衣 マイ mai  沙織 サオリ saori
香織 カオリ kaori  奈々 ナナ nana  千尋 チヒロ chihiro  舞 マイ mai  優子 ユウコ yuko
彩花 アヤカ ayaka  美月 ミヅキ mizuki  花子 ハナコ hanako  理恵 リエ rie  由香 ユカ yuka
絵美 エミ emi  亜美 アミ ami  萌 モエ moe  芽衣 メイ mei  結菜 ユイナ yuina
杏 アン an  紬 ツムギ tsumugi  澪 ミオ mio  楓 カエデ kaede  真央 マオ mao
早紀 サキ saki  瞳 ヒトミ hitomi  友美 トモミ tomomi  恵 メグミ megumi  加奈子 カナコ kanako
美由紀 ミユキ miyuki  綾香 アヤカ ayaka  遥 ハルカ haruka  菜々子 ナナコ nanako  玲奈 レイナ reina
真理 マリ mari  詩織 シオリ shiori  千夏 チナツ chinatsu
""")

GIVEN_MALE = _names("""
太郎 タロウ taro  翔太 ショウタ shota  大輔 ダイスケ daisuke  健太 ケンタ kenta  拓也 タクヤ takuya
直樹 ナオキ naoki  誠 マコト makoto  浩 ヒロシ hiroshi  隆 タカシ takashi  健一 ケンイチ kenichi
和也 カズヤ kazuya  達也 タツヤ tatsuya  翔 ショウ sho  蓮 レン ren  湊 ミナト minato
陽翔 ハルト haruto  悠真 ユウマ yuma  大翔 ヒロト hiroto  樹 イツキ itsuki  颯太 ソウタ sota
悠人 ユウト yuto  陸 リク riku  海斗 カイト kaito  亮 リョウ ryo  淳 ジュン jun
修 オサム osamu  茂 シゲル shigeru  清 キヨシ kiyoshi  学 マナブ manabu  剛 ツヨシ tsuyoshi
哲也 テツヤ tetsuya  一郎 イチロウ ichiro  健二 ケンジ kenji  雄一 ユウイチ yuichi  秀樹 ヒデキ hideki
正人 マサト masato  康介 コウスケ kosuke  雄太 ユウタ yuta  慎也 シンヤ shinya  俊介 シュンスケ shunsuke
大樹 ダイキ daiki  智也 トモヤ tomoya  亮太 リョウタ ryota  拓海 タクミ takumi  隼人 ハヤト hayato
和人 カズト kazuto  光 ヒカル hikaru  航 ワタル wataru  涼介 リョウスケ ryosuke  圭 ケイ kei
洋平 ヨウヘイ yohei  祐介 ユウスケ yusuke  浩二 コウジ koji  勇気 ユウキ yuki  琉生 ルイ rui
""")

# Residential towns per metro area: metro prefecture city town postcode.
_RESIDENTIAL = """
tokyo 東京都 渋谷区 恵比寿 150-0013
tokyo 東京都 世田谷区 三軒茶屋 154-0024
tokyo 東京都 世田谷区 経堂 156-0052
tokyo 東京都 杉並区 高円寺南 166-0003
tokyo 東京都 目黒区 自由が丘 152-0035
tokyo 東京都 中野区 中野 164-0001
tokyo 東京都 練馬区 石神井町 177-0041
tokyo 東京都 品川区 大井 140-0014
tokyo 東京都 大田区 蒲田 144-0052
tokyo 東京都 江東区 豊洲 135-0061
tokyo 東京都 板橋区 成増 175-0094
tokyo 東京都 豊島区 目白 171-0031
tokyo 東京都 文京区 本駒込 113-0021
tokyo 東京都 台東区 谷中 110-0001
tokyo 東京都 江戸川区 西葛西 134-0088
tokyo 東京都 武蔵野市 吉祥寺南町 180-0003
tokyo 東京都 三鷹市 下連雀 181-0013
tokyo 東京都 調布市 布田 182-0024
tokyo 東京都 府中市 宮町 183-0023
tokyo 東京都 立川市 柴崎町 190-0023
tokyo 東京都 町田市 原町田 194-0013
tokyo 東京都 八王子市 旭町 192-0083
tokyo 東京都 港区 芝浦 108-0023
tokyo 東京都 新宿区 神楽坂 162-0825
tokyo 東京都 北区 赤羽 115-0045
tokyo 東京都 足立区 千住 120-0034
tokyo 東京都 葛飾区 亀有 125-0061
kanagawa 神奈川県 横浜市港北区 日吉 223-0061
kanagawa 神奈川県 横浜市青葉区 美しが丘 225-0002
kanagawa 神奈川県 横浜市中区 山手町 231-0862
kanagawa 神奈川県 横浜市戸塚区 戸塚町 244-0003
kanagawa 神奈川県 川崎市中原区 小杉町 211-0063
kanagawa 神奈川県 川崎市高津区 溝口 213-0001
kanagawa 神奈川県 藤沢市 鵠沼海岸 251-0037
kanagawa 神奈川県 相模原市中央区 相模原 252-0231
kanagawa 神奈川県 横浜市港南区 上大岡西 233-0002
kanagawa 神奈川県 鎌倉市 大船 247-0056
saitama 埼玉県 さいたま市浦和区 高砂 330-0063
saitama 埼玉県 さいたま市大宮区 桜木町 330-0854
saitama 埼玉県 川口市 本町 332-0012
saitama 埼玉県 川越市 脇田町 350-1123
saitama 埼玉県 所沢市 日吉町 359-1123
saitama 埼玉県 越谷市 南越谷 343-0845
chiba 千葉県 千葉市中央区 新町 260-0028
chiba 千葉県 船橋市 本町 273-0005
chiba 千葉県 市川市 八幡 272-0021
chiba 千葉県 柏市 柏 277-0005
chiba 千葉県 浦安市 入船 279-0012
chiba 千葉県 松戸市 松戸 271-0092
chiba 千葉県 千葉市美浜区 打瀬 261-0013
chiba 千葉県 木更津市 富士見 292-0831
osaka 大阪府 大阪市北区 天神橋 530-0041
osaka 大阪府 大阪市中央区 谷町 540-0012
osaka 大阪府 大阪市西区 北堀江 550-0014
osaka 大阪府 大阪市天王寺区 上本町 543-0001
osaka 大阪府 大阪市阿倍野区 阿倍野筋 545-0052
osaka 大阪府 豊中市 本町 560-0021
osaka 大阪府 吹田市 江坂町 564-0063
osaka 大阪府 堺市堺区 中瓦町 590-0028
osaka 大阪府 枚方市 岡東町 573-0032
osaka 大阪府 高槻市 城北町 569-0071
osaka 大阪府 泉佐野市 上町 598-0007
kyoto 京都府 京都市中京区 西ノ京 604-8437
kyoto 京都府 京都市左京区 下鴨 606-0801
kyoto 京都府 京都市北区 紫野 603-8214
kyoto 京都府 京都市伏見区 深草 612-0889
kyoto 京都府 宇治市 宇治 611-0021
hyogo 兵庫県 神戸市中央区 北野町 650-0002
hyogo 兵庫県 神戸市東灘区 御影 658-0047
hyogo 兵庫県 西宮市 甲子園口 663-8113
hyogo 兵庫県 芦屋市 大原町 659-0092
hyogo 兵庫県 明石市 大明石町 673-0891
hyogo 兵庫県 姫路市 西二階町 670-0924
aichi 愛知県 名古屋市中区 大須 460-0011
aichi 愛知県 名古屋市千種区 今池 464-0850
aichi 愛知県 名古屋市昭和区 八事本町 466-0825
aichi 愛知県 名古屋市名東区 藤が丘 465-0032
aichi 愛知県 名古屋市瑞穂区 瑞穂通 467-0803
aichi 愛知県 一宮市 本町 491-0859
aichi 愛知県 豊田市 若宮町 471-0026
aichi 愛知県 岡崎市 康生町 444-0052
fukuoka 福岡県 福岡市中央区 大名 810-0041
fukuoka 福岡県 福岡市中央区 薬院 810-0022
fukuoka 福岡県 福岡市早良区 西新 814-0002
fukuoka 福岡県 福岡市東区 香椎 813-0011
fukuoka 福岡県 福岡市南区 大橋 815-0033
fukuoka 福岡県 北九州市小倉北区 魚町 802-0006
fukuoka 福岡県 春日市 春日原北町 816-0803
hokkaido 北海道 札幌市中央区 南一条西 060-0061
hokkaido 北海道 札幌市北区 北二十四条西 001-0024
hokkaido 北海道 札幌市豊平区 平岸一条 062-0931
hokkaido 北海道 札幌市白石区 本通 003-0026
hokkaido 北海道 札幌市厚別区 厚別中央 004-0051
hokkaido 北海道 江別市 大麻 069-0852
miyagi 宮城県 仙台市青葉区 一番町 980-0811
miyagi 宮城県 仙台市宮城野区 榴岡 983-0852
miyagi 宮城県 仙台市太白区 長町 982-0011
miyagi 宮城県 仙台市泉区 泉中央 981-3133
miyagi 宮城県 名取市 増田 981-1224
hiroshima 広島県 広島市中区 大手町 730-0051
hiroshima 広島県 広島市南区 皆実町 734-0007
hiroshima 広島県 広島市安佐南区 祇園 731-0138
hiroshima 広島県 広島市西区 己斐本町 733-0812
hiroshima 広島県 福山市 霞町 720-0065
okayama 岡山県 岡山市北区 表町 700-0822
okayama 岡山県 岡山市北区 奉還町 700-0026
okayama 岡山県 倉敷市 阿知 710-0055
kumamoto 熊本県 熊本市中央区 水前寺 862-0950
kumamoto 熊本県 熊本市東区 健軍 862-0911
kumamoto 熊本県 熊本市中央区 上通町 860-0845
kagoshima 鹿児島県 鹿児島市 東千石町 892-0842
kagoshima 鹿児島県 鹿児島市 中央町 890-0053
kagoshima 鹿児島県 鹿児島市 宇宿 890-0073
niigata 新潟県 新潟市中央区 古町通 951-8063
niigata 新潟県 新潟市中央区 万代 950-0088
niigata 新潟県 新潟市西区 寺尾東 950-2062
shizuoka 静岡県 静岡市葵区 呉服町 420-0031
shizuoka 静岡県 静岡市駿河区 南町 422-8067
shizuoka 静岡県 浜松市中央区 鍛冶町 430-0933
shizuoka 静岡県 沼津市 大手町 410-0801
shizuoka 静岡県 御殿場市 萩原 412-0042
ishikawa 石川県 金沢市 片町 920-0981
ishikawa 石川県 金沢市 広岡 920-0031
ishikawa 石川県 野々市市 本町 921-8815
okinawa 沖縄県 那覇市 牧志 900-0013
okinawa 沖縄県 那覇市 おもろまち 900-0006
okinawa 沖縄県 浦添市 城間 901-2101
okinawa 沖縄県 宜野湾市 大山 901-2223
tochigi 栃木県 宇都宮市 馬場通り 320-0026
tochigi 栃木県 宇都宮市 駅前通り 321-0964
tochigi 栃木県 小山市 城山町 323-0025
gunma 群馬県 高崎市 八島町 370-0849
gunma 群馬県 前橋市 本町 371-0023
gunma 群馬県 高崎市 連雀町 370-0831
ehime 愛媛県 松山市 大街道 790-0004
ehime 愛媛県 松山市 道後湯之町 790-0842
kagawa 香川県 高松市 丸亀町 760-0029
kagawa 香川県 高松市 栗林町 760-0073
nagasaki 長崎県 長崎市 浜町 850-0853
nagasaki 長崎県 長崎市 大黒町 850-0057
iwate 岩手県 盛岡市 大通 020-0022
iwate 岩手県 盛岡市 中央通 020-0021
saga 佐賀県 鳥栖市 弥生が丘 841-0005
saga 佐賀県 佐賀市 駅前中央 840-0801
"""
RESIDENTIAL: dict[str, tuple[tuple[str, str, str, str], ...]] = {}
for _metro, _pref, _city, _town, _post in _rows(_RESIDENTIAL, 5):
    RESIDENTIAL[_metro] = (*RESIDENTIAL.get(_metro, ()), (_pref, _city, _town, _post))

# Store sites in the order a growing chain opens them:
# site prefecture city town postcode lat lon metro store_type.
_STORE_SITES = """
渋谷 東京都 渋谷区 道玄坂 150-0043 35.6580 139.6994 tokyo flagship
梅田 大阪府 大阪市北区 梅田 530-0001 34.7025 135.4959 osaka flagship
新宿 東京都 新宿区 新宿 160-0022 35.6909 139.7033 tokyo standard
名古屋栄 愛知県 名古屋市中区 栄 460-0008 35.1691 136.9084 aichi standard
天神 福岡県 福岡市中央区 天神 810-0001 33.5903 130.3990 fukuoka standard
横浜 神奈川県 横浜市西区 南幸 220-0005 35.4657 139.6223 kanagawa standard
札幌 北海道 札幌市中央区 北五条西 060-0005 43.0687 141.3508 hokkaido standard
心斎橋 大阪府 大阪市中央区 心斎橋筋 542-0085 34.6751 135.5012 osaka standard
銀座 東京都 中央区 銀座 104-0061 35.6717 139.7650 tokyo flagship
仙台 宮城県 仙台市青葉区 中央 980-0021 38.2601 140.8824 miyagi standard
京都河原町 京都府 京都市下京区 御旅町 600-8001 35.0037 135.7690 kyoto standard
三宮 兵庫県 神戸市中央区 三宮町 650-0021 34.6920 135.1935 hyogo standard
広島 広島県 広島市中区 本通 730-0035 34.3937 132.4597 hiroshima standard
池袋 東京都 豊島区 南池袋 171-0022 35.7295 139.7109 tokyo standard
大宮 埼玉県 さいたま市大宮区 大門町 330-0846 35.9063 139.6237 saitama standard
千葉 千葉県 千葉市中央区 富士見 260-0015 35.6130 140.1133 chiba standard
博多 福岡県 福岡市博多区 博多駅中央街 812-0012 33.5902 130.4207 fukuoka standard
吉祥寺 東京都 武蔵野市 吉祥寺本町 180-0004 35.7033 139.5797 tokyo standard
御殿場アウトレット 静岡県 御殿場市 深沢 412-0023 35.3087 138.9700 shizuoka outlet
二子玉川 東京都 世田谷区 玉川 158-0094 35.6117 139.6266 tokyo standard
名古屋駅前 愛知県 名古屋市中村区 名駅 450-0002 35.1709 136.8815 aichi standard
なんば 大阪府 大阪市中央区 難波 542-0076 34.6660 135.5010 osaka standard
表参道 東京都 港区 北青山 107-0061 35.6654 139.7122 tokyo flagship
川崎 神奈川県 川崎市川崎区 駅前本町 210-0007 35.5308 139.6969 kanagawa standard
岡山 岡山県 岡山市北区 表町 700-0822 34.6655 133.9183 okayama standard
熊本 熊本県 熊本市中央区 手取本町 860-0808 32.8030 130.7100 kumamoto standard
新潟 新潟県 新潟市中央区 万代 950-0088 37.9135 139.0559 niigata standard
静岡 静岡県 静岡市葵区 紺屋町 420-0852 34.9739 138.3880 shizuoka standard
金沢 石川県 金沢市 片町 920-0981 36.5620 136.6530 ishikawa standard
りんくうアウトレット 大阪府 泉佐野市 りんくう往来南 598-0048 34.4080 135.3030 osaka outlet
天王寺 大阪府 大阪市阿倍野区 阿倍野筋 545-0052 34.6465 135.5133 osaka standard
上野 東京都 台東区 上野 110-0005 35.7138 139.7773 tokyo standard
立川 東京都 立川市 曙町 190-0012 35.6980 139.4137 tokyo standard
町田 東京都 町田市 原町田 194-0013 35.5423 139.4455 tokyo standard
みなとみらい 神奈川県 横浜市西区 みなとみらい 220-0012 35.4576 139.6322 kanagawa standard
船橋 千葉県 船橋市 本町 273-0005 35.7019 139.9854 chiba standard
鹿児島 鹿児島県 鹿児島市 東千石町 892-0842 31.5900 130.5570 kagoshima standard
那覇 沖縄県 那覇市 牧志 900-0013 26.2150 127.6870 okinawa standard
札幌大通 北海道 札幌市中央区 大通西 060-0042 43.0606 141.3545 hokkaido standard
宇都宮 栃木県 宇都宮市 馬場通り 320-0026 36.5594 139.8984 tochigi standard
浜松 静岡県 浜松市中央区 砂山町 430-0926 34.7037 137.7346 shizuoka standard
姫路 兵庫県 姫路市 駅前町 670-0927 34.8270 134.6906 hyogo standard
松山 愛媛県 松山市 大街道 790-0004 33.8392 132.7657 ehime standard
高松 香川県 高松市 丸亀町 760-0029 34.3429 134.0466 kagawa standard
木更津アウトレット 千葉県 木更津市 金田東 292-0009 35.4040 139.9510 chiba outlet
原宿ポップアップ 東京都 渋谷区 神宮前 150-0001 35.6702 139.7027 tokyo popup
長崎 長崎県 長崎市 浜町 850-0853 32.7440 129.8790 nagasaki standard
高崎 群馬県 高崎市 八島町 370-0849 36.3228 139.0126 gunma standard
盛岡 岩手県 盛岡市 大通 020-0022 39.7016 141.1367 iwate standard
鳥栖アウトレット 佐賀県 鳥栖市 弥生が丘 841-0005 33.3700 130.5270 saga outlet
自由が丘 東京都 目黒区 自由が丘 152-0035 35.6076 139.6687 tokyo standard
浦和 埼玉県 さいたま市浦和区 高砂 330-0063 35.8590 139.6570 saitama standard
柏 千葉県 柏市 柏 277-0005 35.8620 139.9710 chiba standard
京都駅前 京都府 京都市下京区 東塩小路町 600-8216 34.9858 135.7588 kyoto standard
小倉 福岡県 北九州市小倉北区 魚町 802-0006 33.8850 130.8780 fukuoka standard
神戸元町ポップアップ 兵庫県 神戸市中央区 元町通 650-0022 34.6890 135.1870 hyogo popup
藤沢 神奈川県 藤沢市 南藤沢 251-0055 35.3390 139.4880 kanagawa standard
仙台泉 宮城県 仙台市泉区 泉中央 981-3133 38.3220 140.8810 miyagi standard
千里中央 大阪府 豊中市 新千里東町 560-0082 34.8070 135.4950 osaka standard
八王子 東京都 八王子市 旭町 192-0083 35.6560 139.3390 tokyo standard
"""
STORE_SITES: tuple[tuple[str, str, str, str, str, float, float, str, str], ...] = tuple(
    (site, pref, city, town, post, float(lat), float(lon), metro, kind)
    for site, pref, city, town, post, lat, lon, metro, kind in _rows(_STORE_SITES, 9)
)

BUILDINGS: tuple[str, ...] = (
    "メゾン桜",
    "グランドハイツ",
    "コーポ松風",
    "パークサイド",
    "ライオンズマンション",
    "サンハイム",
    "レジデンス青葉",
    "シャトー緑",
    "ハイツ若葉",
    "プラザ東",
    "ヴィラ白樺",
    "クレストコート",
)

# Reserved example domains, so that nothing made here can ever reach a real mailbox.
EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.jp",
    "example.co.jp",
    "example.ne.jp",
    "example.net",
    "example.org",
    "mail.example.jp",
    "docomo.example.ne.jp",
)
EMAIL_DOMAIN_WEIGHTS: tuple[int, ...] = (30, 22, 8, 10, 8, 5, 9, 8)

PLACEHOLDER_EMAIL = "noemail@example.com"
PLACEHOLDER_PHONE = "000-0000-0000"

_FULL_KATA = (
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
)
_HALF_KATA = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝ"
_HALF: dict[str, str] = dict(zip(_FULL_KATA, _HALF_KATA, strict=True))
_HALF.update(zip("ァィゥェォャュョッー　", "ｧｨｩｪｫｬｭｮｯｰ ", strict=True))
for _voiced, _plain in zip(
    "ガギグゲゴザジズゼゾダヂヅデドバビブベボ",
    "カキクケコサシスセソタチツテトハヒフヘホ",
    strict=True,
):
    _HALF[_voiced] = _HALF[_plain] + "ﾞ"
for _voiced, _plain in zip("パピプペポ", "ハヒフヘホ", strict=True):
    _HALF[_voiced] = _HALF[_plain] + "ﾟ"
_HALF["ヴ"] = "ｳﾞ"
_HALF_TABLE = str.maketrans(_HALF)

_WIDE_DIGITS = str.maketrans("0123456789-+", "０１２３４５６７８９－＋")


def half_width_kana(text: str) -> str:
    """``ヤマダ　タロウ`` → ``ﾔﾏﾀﾞ ﾀﾛｳ`` (as some tills and old systems store readings)."""
    return text.translate(_HALF_TABLE)


def wide_digits(text: str) -> str:
    """``090-1234`` → ``０９０－１２３４`` (full-width, as typed with a Japanese IME)."""
    return text.translate(_WIDE_DIGITS)
